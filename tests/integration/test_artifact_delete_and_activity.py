"""Deleting artifacts and reading the activity log over the network, through the real server and CLI: owner-only
deletion (NOT_FOUND for others, never a hint; admins too delete only their own), shared bytes kept for the other
owner, FAILED_PRECONDITION while an audit of the owner reads it, and the admin-only ListActivity with key changes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from effcap.protos.v1 import admin_pb2, artifact_pb2, audit_pb2, spec_pb2

from .conftest import ServerProcess, wait_for
from .test_hostile_calls import free_port
from .test_identity import DIGITS, Keyed, create_key, effcap, refused, scrape, stored_bytes
from .test_lifecycle import ENDLESS

WEIGHTS_ONLY = spec_pb2.AuditSpec(weights=spec_pb2.WeightsSpec())
UNFILTERED = [None, None, None]
# JSON of the token's shape with values no server writes: an overflowing time, True for a time or an id (Python
# takes it for 1), 1.7 for an id, 7 for a principal, True for a start time, and an object of three keys.
FORGED_PAGE_TOKENS = (
    [1e400, 1, UNFILTERED],
    [True, 1, UNFILTERED],
    [1.0, 1.7, UNFILTERED],
    [1.0, True, UNFILTERED],
    [1.0, 1, [7, None, None]],
    [1.0, 1, [None, True, None]],
    {"a": 1, "b": 2, "c": 3},
)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    data_dir = tmp_path_factory.mktemp("owned")
    tokens = {name: create_key(data_dir, name) for name in ("alice", "bob", "gone")}
    tokens["root"] = create_key(data_dir, "root", "--admin")
    assert effcap("admin", "keys", "revoke", "gone", "--data-dir", str(data_dir)).returncode == 0
    port = free_port()
    server = ServerProcess(data_dir, "--metrics-port", str(port)).start()
    server.metrics_port = port
    yield Keyed(server, tokens)
    server.stop()


def npz(path: Path, seed: int) -> Path:
    """A small dataset file with bytes of its own (no other test uploads the same digest)."""
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.normal(size=(8, 3)).astype(np.float32), y_train=np.arange(8) % 2)
    return path


def stored_file(keyed: Keyed, digest: artifact_pb2.Digest) -> Path:
    return keyed.server.data_dir / "artifacts" / digest.sha256[:2] / digest.sha256


def missing_for(client, digest: artifact_pb2.Digest) -> bool:
    find = artifact_pb2.FindMissingArtifactsRequest(digests=[digest])
    return bool(client._call(client.artifacts.FindMissingArtifacts, find).missing)


def test_the_owner_deletes_with_the_cli_others_get_not_found_and_admins_are_refused(keyed: Keyed, tmp_path):
    private = npz(tmp_path / "alice.npz", 1)
    with keyed.client("alice") as alice, keyed.client("bob") as bob, keyed.client("root") as root:
        digest = alice.upload(private)
        before = stored_bytes(scrape(keyed))["alice"]
        absent = artifact_pb2.Digest(sha256="0" * 64, size_bytes=digest.size_bytes)
        expected = refused(lambda: bob.delete_artifact(absent))
        error = refused(lambda: bob.delete_artifact(digest))
        # Worded as for a digest nobody uploaded: nothing says alice holds it.
        assert (error.reason, str(error).replace(digest.sha256, "0" * 64)) == (expected.reason, str(expected))
        assert error.field == "digest"
        # An admin sees every artifact, so it is told why: deleting is the uploader's, admins included.
        denied = refused(lambda: root.delete_artifact(digest), "PERMISSION_DENIED")
        assert denied.reason == "ARTIFACT_NOT_OWNED" and "root" in str(denied)
        assert not missing_for(alice, digest) and stored_file(keyed, digest).is_file()
    deleted = effcap(
        "artifacts", "delete", str(private), "--server", keyed.server.address, "--token", keyed.tokens["alice"]
    )
    assert deleted.returncode == 0 and f"sha256:{digest.sha256}" in deleted.stdout, deleted.stderr
    with keyed.client("alice") as alice:
        assert missing_for(alice, digest)
        refused(lambda: alice.delete_artifact(digest))  # once only
    assert not stored_file(keyed, digest).exists()
    assert stored_bytes(scrape(keyed)).get("alice", 0) == before - digest.size_bytes
    again = effcap("artifacts", "delete", f"sha256:{digest.sha256}", "--server", keyed.server.address)
    assert again.returncode == 2 and "UNAUTHENTICATED" in again.stderr  # the CLI needs a token like every call
    bad = effcap("artifacts", "delete", "not-a-digest", "--server", keyed.server.address)
    assert bad.returncode == 2 and "neither a file nor a digest" in bad.stderr


def test_shared_bytes_stay_while_another_owner_holds_them(keyed: Keyed, tmp_path):
    shared = npz(tmp_path / "shared.npz", 2)
    with keyed.client("alice") as alice, keyed.client("bob") as bob:
        digest = alice.upload(shared)
        bob.upload(shared)  # sends every byte; the file on disk is one
        by_sha = artifact_pb2.Digest(sha256=digest.sha256)  # size 0: whatever size it has, as `sha256:HEX` names it
        alice.delete_artifact(by_sha)
        assert missing_for(alice, digest) and not missing_for(bob, digest)
        assert bob._call(bob.artifacts.GetArtifact, artifact_pb2.GetArtifactRequest(digest=digest)).digest == digest
        assert stored_file(keyed, digest).is_file()
        wrong_size = artifact_pb2.Digest(sha256=digest.sha256, size_bytes=digest.size_bytes + 1)
        refused(lambda: bob.delete_artifact(wrong_size))
        bad = refused(lambda: bob.delete_artifact(artifact_pb2.Digest(sha256="XYZ")), "INVALID_ARGUMENT")
        assert bad.field == "digest.sha256"
        bob.delete_artifact(digest)
        assert missing_for(bob, digest) and not stored_file(keyed, digest).exists()


def test_an_artifact_an_unfinished_audit_reads_is_refused_and_finished_reports_stay(keyed: Keyed, demo_files):
    with keyed.client("alice") as alice:
        model = alice.upload(demo_files[0])
        finished = alice.wait(alice.create_audit(model, spec_pb2.DatasetRef(), WEIGHTS_ONLY).name)
        assert finished.done and not finished.HasField("error")
        running = alice.create_audit(model, DIGITS, ENDLESS)
        error = refused(lambda: alice.delete_artifact(model), "FAILED_PRECONDITION")
        assert error.reason == "ARTIFACT_IN_USE" and running.name in str(error) and error.field == "digest"
        assert not missing_for(alice, model)
        alice.cancel(running.name)
        wait_for(lambda: alice.get_audit(running.name).state == audit_pb2.AUDIT_STATE_CANCELLED, timeout=30)
        alice.delete_artifact(model)
        assert missing_for(alice, model)
        kept = alice.get_audit(finished.name)
        assert kept.state == audit_pb2.AUDIT_STATE_SUCCEEDED and kept.report.HasField("weights")


def test_admins_page_through_the_activity_log_and_others_are_denied(keyed: Keyed, tmp_path):
    with keyed.client("alice") as alice:
        digest = alice.upload(npz(tmp_path / "logged.npz", 3))
        alice.delete_artifact(digest)
    with keyed.client("bob") as bob:
        denied = refused(lambda: next(bob.activity()), "PERMISSION_DENIED")
        assert denied.reason == "ADMIN_REQUIRED" and "--admin" in str(denied)
    with keyed.client("root") as root:
        first = root._call(root.admin.ListActivity, admin_pb2.ListActivityRequest(page_size=2))
        assert len(first.entries) == 2 and first.next_page_token
        second = root._call(
            root.admin.ListActivity, admin_pb2.ListActivityRequest(page_size=2, page_token=first.next_page_token)
        )
        every = list(root.activity(page_size=3))
        assert [e.target for e in every[:4]] == [e.target for e in (*first.entries, *second.entries)]
        times = [e.time.ToNanoseconds() for e in every]
        assert times == sorted(times, reverse=True)  # newest first
        assert (every[0].principal, every[0].action, every[0].target) == ("alice", "delete", f"sha256:{digest.sha256}")
        # `effcap admin keys` on the data directory, as the OS user who ran it.
        keys = [(e.action, e.target.split(" ", 1)[1]) for e in every if e.principal.startswith("data-dir:")]
        made = {"(alice)", "(bob)", "(gone)", "(root, admin)"}
        assert {("create-key", who) for who in made} | {("revoke-key", "(gone)")} == set(keys), keys
        assert all(e.target.startswith("keys/") for e in every if e.action.endswith("-key"))
        only_alice = list(root.activity(principal="alice"))
        assert only_alice and {e.principal for e in only_alice} == {"alice"}
        later = datetime.now(UTC) + timedelta(hours=1)
        assert list(root.activity(start=later)) == []
        changed = admin_pb2.ListActivityRequest(page_size=2, page_token=first.next_page_token, principal="bob")
        error = refused(lambda: root._call(root.admin.ListActivity, changed), "INVALID_ARGUMENT")
        assert error.reason == "PAGE_TOKEN_FILTER_CHANGED"
        whole = root._call(root.admin.ListActivity, admin_pb2.ListActivityRequest(page_size=len(every)))
        assert len(whole.entries) == len(every) and whole.next_page_token == ""  # a full last page is the last
        for forged_token in FORGED_PAGE_TOKENS:
            forged = base64.urlsafe_b64encode(json.dumps(forged_token).encode()).decode()
            forged_request = admin_pb2.ListActivityRequest(page_token=forged)
            forged_error = refused(partial(root._call, root.admin.ListActivity, forged_request), "INVALID_ARGUMENT")
            assert (forged_error.field, forged_error.reason) == ("page_token", "INVALID_PAGE_TOKEN"), forged_token
    address = keyed.server.address
    shown = effcap("admin", "log", "--server", address, "--token", keyed.tokens["root"], "--limit", "3")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 3 and lines[-1].split()[2:5] == ["alice", "delete", f"sha256:{digest.sha256}"]
    on_disk = effcap("admin", "log", "--data-dir", str(keyed.server.data_dir), "--limit", "3")
    assert on_disk.stdout == shown.stdout  # the same log, read beside the server or through it
    as_bob = effcap("admin", "log", "--server", address, "--token", keyed.tokens["bob"])
    assert as_bob.returncode == 2 and "PERMISSION_DENIED" in as_bob.stderr


def test_cli_errors_name_what_is_wrong_before_any_call():
    both = effcap("admin", "log", "--server", "127.0.0.1:1", "--data-dir", "x")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    backwards = effcap("admin", "log", "--since", "2026-12-02", "--until", "2026-12-01", "--data-dir", "x")
    assert backwards.returncode == 2 and "--until must be after --since" in backwards.stderr
