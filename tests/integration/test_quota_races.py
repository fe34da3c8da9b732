"""Calls racing for a quota's last units through the real server: exactly the quota's worth is admitted.

Each racer is its own client (its own channel), all released at once; the losers get RESOURCE_EXHAUSTED with a
QuotaFailure. Uploads pause after their header, so that every racer is admitted or refused while the winners'
bytes are still on their way: a check that did not count uploads under way would admit all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from effcap.clients.sdk import EffcapClient, file_digest
from effcap.protos.v1 import artifact_pb2, audit_pb2, spec_pb2

from .conftest import ServerProcess
from .test_lifecycle import ENDLESS
from .test_quotas import quota_failure

RACERS = 6
UPLOADS_ADMITTED = 2
AUDITS_ADMITTED = 2
DIGITS = spec_pb2.DatasetRef(builtin="digits")


def racer_file(directory: Path, index: int) -> Path:
    """Distinct .npz files of one size: `index` changes a value, not the shape."""
    path = directory / f"racer-{index}.npz"
    np.savez(path, x_train=np.full((64, 16), index, np.float32), y_train=np.zeros(64, np.int64))
    return path


class Raced:
    def __init__(self, server: ServerProcess, model: artifact_pb2.Digest, racers: list[Path]) -> None:
        self.server = server
        self.model = model
        self.racers = racers


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory, demo_files) -> Iterator[Raced]:
    files = tmp_path_factory.mktemp("racers")
    racers = [racer_file(files, index) for index in range(RACERS)]
    sizes = {path.stat().st_size for path in racers}
    assert len(sizes) == 1, sizes
    # Room for the model and exactly UPLOADS_ADMITTED racers, with a byte to spare (not enough for another).
    quota = demo_files[0].stat().st_size + UPLOADS_ADMITTED * sizes.pop() + 1
    server = ServerProcess(
        tmp_path_factory.mktemp("raced"),
        "--quota-stored-bytes", str(quota),
        "--quota-open-audits", str(AUDITS_ADMITTED),
    ).start()  # fmt: skip
    try:
        with EffcapClient(server.address) as client:
            model = client.upload(demo_files[0])
        yield Raced(server, model, racers)
    finally:
        server.stop()


def race(calls: list[Callable[[], object]]) -> tuple[int, list[grpc.RpcError]]:
    """Run each call on its own thread, all released together: (how many succeeded, the errors of the others)."""
    start = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = calls[index]()
        except grpc.RpcError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [outcome for outcome in outcomes if isinstance(outcome, grpc.RpcError)]
    assert all(outcome is not None for outcome in outcomes), outcomes
    return len(calls) - len(errors), errors


def slow_upload(path: Path) -> Iterator[artifact_pb2.UploadArtifactRequest]:
    """The header at once, the bytes a moment later (a large upload's bytes take that long to arrive)."""
    yield artifact_pb2.UploadArtifactRequest(header=artifact_pb2.UploadHeader(digest=file_digest(path)))
    time.sleep(1.0)
    yield artifact_pb2.UploadArtifactRequest(chunk=path.read_bytes())


def refused_for(error: grpc.RpcError, quota: str) -> None:
    def reraise() -> None:
        raise error

    violation, metadata = quota_failure(reraise)
    assert violation.quota_id == quota and metadata["quota"] == quota, (violation, metadata)


def test_uploads_racing_for_the_last_stored_bytes_admit_exactly_the_quota(raced: Raced):
    clients = [EffcapClient(raced.server.address) for _ in raced.racers]
    try:
        calls = [
            lambda client=client, path=path: client.artifacts.UploadArtifact(slow_upload(path), timeout=60)
            for client, path in zip(clients, raced.racers, strict=True)
        ]
        succeeded, errors = race(calls)
        assert succeeded == UPLOADS_ADMITTED, [error.details() for error in errors]
        for error in errors:
            refused_for(error, "stored_bytes")
        request = artifact_pb2.FindMissingArtifactsRequest(digests=[file_digest(path) for path in raced.racers])
        missing = clients[0]._call(clients[0].artifacts.FindMissingArtifacts, request).missing
        assert len(missing) == RACERS - UPLOADS_ADMITTED  # the refused ones stored nothing
    finally:
        for client in clients:
            client.close()


def test_audits_racing_for_the_last_open_audit_admit_exactly_the_quota(raced: Raced):
    clients = [EffcapClient(raced.server.address) for _ in range(RACERS)]
    try:
        calls = [
            lambda client=client, seed=seed: client.audits.CreateAudit(
                audit_pb2.CreateAuditRequest(model=raced.model, dataset=DIGITS, spec=_endless(seed)), timeout=120
            )
            for seed, client in enumerate(clients)
        ]
        succeeded, errors = race(calls)
        assert succeeded == AUDITS_ADMITTED, [error.details() for error in errors]
        for error in errors:
            refused_for(error, "open_audits")
        listed = clients[0].audits.ListAudits(audit_pb2.ListAuditsRequest(page_size=50), timeout=30).audits
        assert len(listed) == AUDITS_ADMITTED
        for audit in listed:
            clients[0].cancel(audit.name)
    finally:
        for client in clients:
            client.close()


def _endless(seed: int) -> spec_pb2.AuditSpec:
    """An audit that runs until cancelled (one finishing mid-race would free a slot), distinct by seed."""
    spec = spec_pb2.AuditSpec()
    spec.CopyFrom(ENDLESS)
    spec.seed = seed
    return spec
