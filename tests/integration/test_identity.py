"""Identity and ownership through the real server: API keys made with the CLI, bearer tokens on every call,
NOT_FOUND for what another principal owns (never a hint that it exists), admins see all, and an activity log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import artifact_pb2, audit_pb2, spec_pb2

from .conftest import QUICK_AUDIT_ARGS, ServerProcess
from .test_hostile_calls import free_port
from .test_lifecycle import ENDLESS

CLI = [sys.executable, "-m", "effcap.clients.cli"]
DIGITS = spec_pb2.DatasetRef(builtin="digits")


def effcap(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=env)


def create_key(data_dir: Path, name: str, *flags: str) -> str:
    """A key made the way an operator makes one; the token is the last line of standard output."""
    result = effcap("admin", "keys", "create", name, *flags, "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("effcap_") and len(token) > 40
    return token


class Keyed:
    def __init__(self, server: ServerProcess, tokens: dict[str, str]) -> None:
        self.server = server
        self.tokens = tokens

    def client(self, who: str | None) -> EffcapClient:
        return EffcapClient(self.server.address, token=self.tokens[who] if who else None)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    data_dir = tmp_path_factory.mktemp("keyed")
    tokens = {name: create_key(data_dir, name) for name in ("alice", "bob", "gone")}
    tokens["root"] = create_key(data_dir, "root", "--admin")
    revoked = effcap("admin", "keys", "revoke", "gone", "--data-dir", str(data_dir))
    assert revoked.returncode == 0 and "revoked key" in revoked.stderr, revoked.stderr
    port = free_port()
    server = ServerProcess(data_dir, "--metrics-port", str(port)).start()
    server.metrics_port = port
    yield Keyed(server, tokens)
    server.stop()


def refused(call, code: str = "NOT_FOUND") -> EffcapError:
    with pytest.raises(EffcapError) as info:
        call()
    assert info.value.code == code, str(info.value)
    return info.value


def test_the_key_listing_keeps_no_token_and_the_store_only_its_hash(keyed: Keyed):
    listing = effcap("admin", "keys", "list", "--data-dir", str(keyed.server.data_dir))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert any(" alice " in line and " user " in line for line in lines)
    assert any(" root " in line and " admin " in line for line in lines)
    gone = next(line for line in lines if " gone " in line)
    assert not gone.rstrip().endswith("-")  # it shows when it was revoked
    store = (keyed.server.data_dir / "effcap.sqlite3").read_bytes() + (
        keyed.server.data_dir / "effcap.sqlite3-wal"
    ).read_bytes()
    for token in keyed.tokens.values():
        assert token.encode() not in store and token.encode() not in listing.stdout.encode()


def test_calls_without_a_valid_token_are_unauthenticated_and_health_is_not(keyed: Keyed, demo_files):
    with keyed.client(None) as anonymous:
        error = refused(lambda: anonymous.get_audit("audits/x"), "UNAUTHENTICATED")
        assert "--token" in str(error) and "EFFCAP_TOKEN" in str(error) and error.reason == "TOKEN_REQUIRED"
        refused(lambda: anonymous.upload(demo_files[0]), "UNAUTHENTICATED")
    with EffcapClient(keyed.server.address, token="effcap_not-a-key") as wrong:
        assert refused(lambda: wrong.get_audit("audits/x"), "UNAUTHENTICATED").reason == "TOKEN_UNKNOWN"
    with keyed.client("gone") as revoked:
        error = refused(lambda: revoked.get_audit("audits/x"), "UNAUTHENTICATED")
        assert error.reason == "TOKEN_REVOKED" and "gone" in str(error)
    with grpc.insecure_channel(keyed.server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        malformed = [("authorization", "Basic YWxpY2U6cGFzcw==")]
        with pytest.raises(grpc.RpcError) as info:
            audit_pb2_grpc_stub(channel).GetAudit(
                audit_pb2.GetAuditRequest(name="audits/x"), metadata=malformed, timeout=10
            )
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in info.value.details()


def audit_pb2_grpc_stub(channel: grpc.Channel):
    from effcap.protos.v1 import audit_pb2_grpc

    return audit_pb2_grpc.AuditServiceStub(channel)


def test_another_principals_audit_is_not_found_by_every_call_and_admins_see_it(keyed: Keyed, demo_files):
    with keyed.client("alice") as alice, keyed.client("bob") as bob, keyed.client("root") as root:
        model = alice.upload(demo_files[0])
        operation = alice.create_audit(model, DIGITS, ENDLESS, request_id="shared-request-id")
        name = operation.name
        missing_name = "audits/" + "0" * 32
        expected = refused(lambda: bob.get_audit(missing_name))
        wait = operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=1))
        calls = {
            "GetAudit": lambda: bob.get_audit(name),
            "GetOperation": lambda: bob.get_operation(name),
            "CancelOperation": lambda: bob.cancel(name),
            "DeleteOperation": lambda: bob._call(
                bob.operations.DeleteOperation, operations_pb2.DeleteOperationRequest(name=name)
            ),
            "WaitOperation": lambda: bob._call(bob.operations.WaitOperation, wait),
            "StreamAuditEvents": lambda: list(bob.events(name)),
        }
        for method, call in calls.items():
            error = refused(call)
            # The same answer as for an audit that does not exist: nothing says this one does.
            assert (error.reason, str(error).replace(name, missing_name)) == (expected.reason, str(expected)), method
        listed = bob._call(bob.audits.ListAudits, audit_pb2.ListAuditsRequest(page_size=1000))
        assert name not in [a.name for a in listed.audits]
        operations = bob._call(bob.operations.ListOperations, operations_pb2.ListOperationsRequest(page_size=1000))
        assert name not in [o.name for o in operations.operations]
        # request_ids are per principal: bob's same id is a new audit of bob's, not alice's.
        bob_model = bob.upload(demo_files[0])
        own = bob.create_audit(bob_model, DIGITS, ENDLESS, request_id="shared-request-id")
        assert own.name != name
        bob.cancel(own.name)
        # An admin sees and lists everyone's audits.
        assert root.get_audit(name).name == name
        everyone = root._call(root.audits.ListAudits, audit_pb2.ListAuditsRequest(page_size=1000))
        assert {name, own.name} <= {a.name for a in everyone.audits}
        alice.cancel(name)
        assert alice.get_audit(name).state == audit_pb2.AUDIT_STATE_CANCELLED
        refused(lambda: bob._call(bob.operations.DeleteOperation, operations_pb2.DeleteOperationRequest(name=name)))
        # Deleting is the owner's alone: an admin, who sees the audit, is told why (issue 13).
        delete = operations_pb2.DeleteOperationRequest(name=name)
        denied = refused(lambda: root._call(root.operations.DeleteOperation, delete), "PERMISSION_DENIED")
        assert denied.reason == "AUDIT_NOT_OWNED" and "alice" in str(denied)
        assert root.get_audit(name).name == name
        alice._call(alice.operations.DeleteOperation, operations_pb2.DeleteOperationRequest(name=name))
        refused(lambda: root.get_audit(name))
    log = effcap("admin", "log", "--data-dir", str(keyed.server.data_dir))
    assert log.returncode == 0, log.stderr
    actions = [line.split()[2:5] for line in log.stdout.splitlines()]
    for entry in (
        ["alice", "create", name],
        ["alice", "cancel", name],
        ["alice", "delete", name],
        ["bob", "cancel", own.name],
    ):
        assert entry in actions, log.stdout
    only_bob = effcap("admin", "log", "--principal", "bob", "--data-dir", str(keyed.server.data_dir))
    assert only_bob.stdout and all(line.split()[2] == "bob" for line in only_bob.stdout.splitlines())


def scrape(keyed: Keyed) -> str:
    """Keys exist, so a scrape needs an admin's (test_metrics_access.py)."""
    url = f"http://127.0.0.1:{keyed.server.metrics_port}/metrics"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {keyed.tokens['root']}"})
    return urllib.request.urlopen(request, timeout=10).read().decode()


def stored_bytes(metrics: str) -> dict[str, float]:
    """effcap_stored_bytes by principal."""
    lines = [line for line in metrics.splitlines() if line.startswith("effcap_stored_bytes{")]
    return {line.split('"')[1]: float(line.split()[-1]) for line in lines}


def test_artifacts_are_visible_to_their_uploaders_only(keyed: Keyed, tmp_path):
    private = tmp_path / "alice-only.npz"
    import numpy as np

    np.savez(private, x_train=np.zeros((4, 2), np.float32), y_train=np.zeros(4, np.int64))
    with keyed.client("alice") as alice, keyed.client("bob") as bob, keyed.client("root") as root:
        digest = alice.upload(private)
        before = stored_bytes(scrape(keyed))
        alice_before, bob_before = before["alice"], before.get("bob", 0)
        find = artifact_pb2.FindMissingArtifactsRequest(digests=[digest])
        assert not alice._call(alice.artifacts.FindMissingArtifacts, find).missing
        # Uploaded by alice, still "missing" for bob: he must send the bytes to use them.
        assert list(bob._call(bob.artifacts.FindMissingArtifacts, find).missing) == [digest]
        refused(lambda: bob._call(bob.artifacts.GetArtifact, artifact_pb2.GetArtifactRequest(digest=digest)))
        error = refused(lambda: bob.create_audit(digest, DIGITS, ENDLESS))
        assert error.field == "model"
        assert root._call(root.artifacts.GetArtifact, artifact_pb2.GetArtifactRequest(digest=digest)).digest == digest
        bob.upload(private)  # sends every byte, then owns the shared file too
        assert not bob._call(bob.artifacts.FindMissingArtifacts, find).missing
    metrics = scrape(keyed)
    stored = stored_bytes(metrics)
    assert stored["bob"] - bob_before == private.stat().st_size  # bob is charged for the file he now holds
    assert stored["alice"] - alice_before == 0  # and alice is not charged again
    assert 'principal="alice"' in metrics and 'code="UNAUTHENTICATED"' in metrics
    access = [
        json.loads(line.split(" INFO ", 1)[1])
        for line in keyed.server.log().splitlines()
        if "effcap.access INFO" in line
    ]
    assert {
        "principal": "bob",
        "method": "/effcap.v1.ArtifactService/GetArtifact",
        "code": "NOT_FOUND",
    }.items() <= next(
        entry for entry in access if entry["principal"] == "bob" and entry["method"].endswith("GetArtifact")
    ).items()


def test_a_key_made_with_the_cli_is_used_by_the_cli(keyed: Keyed, demo_files, tmp_path):
    token = create_key(keyed.server.data_dir, "carol")
    model, data = (str(path) for path in demo_files)
    report = tmp_path / "report.json"
    audit = [
        *CLI,
        "audit",
        model,
        "--data",
        data,
        "--server",
        keyed.server.address,
        "--format",
        "json",
        "-o",
        str(report),
        *QUICK_AUDIT_ARGS,
    ]
    without = subprocess.run(audit, capture_output=True, text=True, timeout=300)
    assert without.returncode == 2 and "UNAUTHENTICATED" in without.stderr
    done = subprocess.run([*audit, "--token", token], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    name = done.stderr.split("audit ", 1)[1].split()[0]
    assert name.startswith("audits/")
    # EFFCAP_TOKEN serves as well as --token; another principal's token does not see carol's audit.
    shown = effcap(
        "report", name, "--server", keyed.server.address, "--format", "json", env={**os.environ, "EFFCAP_TOKEN": token}
    )
    assert shown.returncode == 0 and json.loads(shown.stdout) == json.loads(report.read_text())
    other = effcap("report", name, "--server", keyed.server.address, "--token", keyed.tokens["bob"])
    assert other.returncode == 2 and "NOT_FOUND" in other.stderr


def test_the_first_key_ends_anonymous_access_on_loopback(tmp_path):
    server = ServerProcess(tmp_path / "first").start()
    try:
        with EffcapClient(server.address, token="effcap_meant-for-another-server") as stray:
            refused(lambda: stray.get_audit("audits/" + "0" * 32))  # no key issued here: the token is ignored
        with EffcapClient(server.address) as anonymous:
            refused(lambda: anonymous.get_audit("audits/" + "0" * 32))  # served: NOT_FOUND, not UNAUTHENTICATED
            token = create_key(server.data_dir, "dana")
            refused(lambda: anonymous.get_audit("audits/" + "0" * 32), "UNAUTHENTICATED")
        with EffcapClient(server.address, token=token) as dana:
            refused(lambda: dana.get_audit("audits/" + "0" * 32))
    finally:
        server.stop()
