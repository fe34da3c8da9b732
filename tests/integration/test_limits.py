"""Stalled clients cannot take the server: long calls share capped slots, idle uploads are cancelled."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import artifact_pb2, artifact_pb2_grpc, spec_pb2

from .conftest import ServerProcess, digits_spec


@pytest.fixture
def small_server(tmp_path):
    running = ServerProcess(tmp_path / "server", "--max-long-calls", "2", "--upload-idle-seconds", "2", "--max-parameters", "100000").start()
    yield running
    running.stop()


def stalled_upload(address: str, index: int, outcome: dict, release: threading.Event) -> None:
    """Send an upload's header, then nothing until released; record how the call ended."""

    def requests():
        digest = artifact_pb2.Digest(sha256=f"{index + 1:064x}", size_bytes=1000)
        yield artifact_pb2.UploadArtifactRequest(header=artifact_pb2.UploadHeader(digest=digest))
        release.wait(30)

    with grpc.insecure_channel(address) as channel:
        started = time.monotonic()
        try:
            artifact_pb2_grpc.ArtifactServiceStub(channel).UploadArtifact(requests(), timeout=30)
            outcome[index] = ("OK", time.monotonic() - started, "")
        except grpc.RpcError as error:
            outcome[index] = (error.code().name, time.monotonic() - started, EffcapError.from_rpc_error(error).reason)


def test_stalled_uploads_neither_starve_other_calls_nor_hold_their_slots(small_server, demo_files):
    outcome: dict[int, tuple[str, float, str]] = {}
    release = threading.Event()
    stalled = [threading.Thread(target=stalled_upload, args=(small_server.address, i, outcome, release)) for i in range(2)]
    for thread in stalled:
        thread.start()
    time.sleep(0.5)
    with EffcapClient(small_server.address) as client:
        # Both slots are taken: a third long call is refused at once, with a retry hint...
        with pytest.raises(EffcapError) as info:
            client.upload(demo_files[0])
        assert (info.value.code, info.value.reason, info.value.retry_after_s) == ("RESOURCE_EXHAUSTED", "TOO_MANY_LONG_CALLS", 5.0)
        # ...while short calls are still answered.
        with grpc.insecure_channel(small_server.address) as channel:
            assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        for thread in stalled:
            thread.join(timeout=20)
        release.set()
        # The idle uploads were cancelled after about 2 s of silence, saying why, freeing their slots.
        assert [(code, reason) for code, _, reason in outcome.values()] == [("CANCELLED", "UPLOAD_IDLE")] * 2
        assert all(1.5 < seconds < 10 for _, seconds, _ in outcome.values())
        assert client.upload(demo_files[0]).size_bytes > 0
    assert not list((small_server.data_dir / "artifacts" / "incoming").glob("*"))  # partial files removed
    assert "Traceback" not in small_server.log()


def test_a_model_beyond_the_servers_parameter_limit_is_refused(small_server, demo_files):
    with EffcapClient(small_server.address) as client:
        model = client.upload(demo_files[0])  # the demo's MLP: 301,066 parameters
        with pytest.raises(EffcapError) as info:
            client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", seeds=1, epochs=1))
    assert (info.value.code, info.value.reason, info.value.field) == ("RESOURCE_EXHAUSTED", "MODEL_TOO_LARGE", "model")
    assert "301,066 parameters" in str(info.value)
