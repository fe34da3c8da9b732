"""A full disk is survived: writes are refused with RESOURCE_EXHAUSTED, health says NOT_SERVING, and
everything resumes by itself once space returns. The data directory is a real 8 MiB tmpfs, filled
with a file until the kernel answers ENOSPC."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import audit_pb2, spec_pb2

from ..full_disk import fill, small_tmpfs
from .conftest import ServerProcess, digits_spec, wait_for


@pytest.fixture
def small_disk(tmp_path: Path):
    with small_tmpfs(tmp_path / "disk") as mount:
        yield mount


def health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_a_full_disk_refuses_writes_reports_not_serving_and_recovers_by_itself(small_disk, demo_files, tmp_path):
    server = ServerProcess(small_disk / "data").start()
    try:
        with EffcapClient(server.address) as client:
            model = client.upload(demo_files[0])
            running = client.create_audit(
                model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true,random", seeds=1, epochs=25)
            )
            wait_for(lambda: client.get_audit(running.name).state == audit_pb2.AUDIT_STATE_RUNNING, timeout=120)

            filler = fill(small_disk)
            wait_for(lambda: health(server.address) == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10)
            other = tmp_path / "other.npz"
            other.write_bytes(demo_files[1].read_bytes()[:-1] + b"\0")  # a digest the server does not hold
            for call in (
                lambda: client.upload(other),
                lambda: client.create_audit(
                    model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", 1, 1), skip_cache=True
                ),
            ):
                with pytest.raises(EffcapError) as info:
                    call()
                assert (info.value.code, info.value.reason, info.value.retry_after_s) == (
                    "RESOURCE_EXHAUSTED",
                    "STORAGE_FULL",
                    5.0,
                )
            time.sleep(3)  # the running audit's progress meets the full disk meanwhile

            filler.unlink()
            freed = time.monotonic()
            wait_for(lambda: health(server.address) == health_pb2.HealthCheckResponse.SERVING, timeout=10)
            assert time.monotonic() - freed < 5
            assert client.report_of(client.wait(running.name)).model.parameter_count > 0
            # The scheduler lived through it: a new audit is taken and finishes.
            again = client.create_audit(
                model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", 1, 1), skip_cache=True
            )
            assert client.report_of(client.wait(again.name)).model.parameter_count > 0
    finally:
        server.stop()
    assert "Traceback" not in server.log()
