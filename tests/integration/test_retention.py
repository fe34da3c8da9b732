"""Retention against a real server and data dir: partial uploads and files a crashed deletion left go at start-up;
ended audits and unused artifacts expire, and nothing a queued or running audit names is ever removed."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import numpy as np

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import artifact_pb2, artifact_pb2_grpc, spec_pb2

from .conftest import ServerProcess, wait_for
from .test_lifecycle import ENDLESS, running

# 3 seconds, in days.
SHORT_DAYS = 3 / 86_400


def stalled_upload(address: str, release: threading.Event) -> None:
    """An upload that sends 1 MiB of its declared 4 MiB, then nothing until released."""

    def requests():
        digest = artifact_pb2.Digest(sha256=hashlib.sha256(b"never sent").hexdigest(), size_bytes=4 << 20)
        yield artifact_pb2.UploadArtifactRequest(header=artifact_pb2.UploadHeader(digest=digest))
        yield artifact_pb2.UploadArtifactRequest(chunk=bytes(1 << 20))
        release.wait(60)

    with grpc.insecure_channel(address) as channel:
        try:
            artifact_pb2_grpc.ArtifactServiceStub(channel).UploadArtifact(requests(), timeout=60)
        except grpc.RpcError:
            pass  # the server is killed under it


def test_a_partial_upload_left_by_a_crash_is_removed_at_start_up(tmp_path):
    server = ServerProcess(tmp_path / "server").start()
    incoming = server.data_dir / "artifacts" / "incoming"
    kept, deleted = (small_npz(tmp_path / f"{n}.npz", n) for n in (1, 2))
    with EffcapClient(server.address) as client:
        kept_digest, deleted_digest = client.upload(kept), client.upload(deleted)
    release = threading.Event()
    upload = threading.Thread(target=stalled_upload, args=(server.address, release))
    upload.start()
    try:
        partial = wait_for(lambda: [p for p in incoming.iterdir() if p.stat().st_size >= 1 << 20], timeout=60)
        server.stop(signal.SIGKILL)
    finally:
        release.set()
        upload.join()
    assert all(p.exists() for p in partial)  # the crash left it
    # A DeleteArtifact killed between its record (committed) and its file: what the crash leaves.
    with sqlite3.connect(server.data_dir / "effcap.sqlite3") as db:
        db.execute("DELETE FROM artifact_owners WHERE sha256 = ?", (deleted_digest.sha256,))
        db.execute("DELETE FROM artifacts WHERE sha256 = ?", (deleted_digest.sha256,))
    server.start()
    try:
        assert list(incoming.iterdir()) == []
        assert "removed 1 partial upload(s)" in server.log()
        assert "removed 1 artifact file(s) no record names" in server.log()
        with EffcapClient(server.address) as client:
            assert stored(client, kept_digest, server) and not stored(client, deleted_digest, server)
            assert not (server.data_dir / "artifacts" / deleted_digest.sha256[:2] / deleted_digest.sha256).exists()
    finally:
        server.stop()


def small_npz(path: Path, seed: int) -> Path:
    np.savez(path, x_train=np.random.default_rng(seed).normal(size=(4, 2)).astype(np.float32), y_train=np.arange(4))
    return path


def stored(client: EffcapClient, digest: artifact_pb2.Digest, server: ServerProcess) -> bool:
    path = server.data_dir / "artifacts" / digest.sha256[:2] / digest.sha256
    missing = client.artifacts.FindMissingArtifacts(artifact_pb2.FindMissingArtifactsRequest(digests=[digest])).missing
    return not missing and path.is_file()


def test_ended_audits_and_unused_artifacts_expire_but_a_running_audits_inputs_stay(tmp_path, demo_files):
    retain = [
        "--retain-reports",
        str(SHORT_DAYS),
        "--retain-artifacts",
        str(SHORT_DAYS),
        "--retention-sweep-seconds",
        "0.3",
    ]
    server = ServerProcess(tmp_path / "server", *retain).start()
    try:
        with EffcapClient(server.address) as client:
            model = client.upload(demo_files[0])
            unused = client.upload(demo_files[1])
            operation = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), ENDLESS)
            wait_for(lambda: running(client, operation.name), timeout=120)
            wait_for(lambda: not stored(client, unused, server), timeout=60)
            # Many sweeps after the model's age passed its retention, the running audit still has it.
            wait_for(lambda: "retention: deleted 0 ended audit(s) and 1 unused artifact(s)" in server.log(), timeout=30)
            threading.Event().wait(6 * 0.3 + 3)
            assert stored(client, model, server) and running(client, operation.name)
            client.cancel(operation.name)
            wait_for(lambda: not stored(client, model, server), timeout=60)

            def audit_gone() -> bool:
                try:
                    client.get_audit(operation.name)
                except EffcapError as error:
                    return error.code == "NOT_FOUND"
                return False

            wait_for(audit_gone, timeout=60)
    finally:
        server.stop()
    assert "retention sweep failed" not in server.log()


def test_retention_takes_a_positive_number_of_days(tmp_path):
    for bad in ("0", "-1", "nan", "soon"):
        command = [
            sys.executable,
            "-m",
            "effcap.clients.cli",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--retain-reports",
            bad,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "--retain-reports" in done.stderr, (bad, done.stderr[-500:])
