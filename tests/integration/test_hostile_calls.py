"""Inputs that used to get INTERNAL each get INVALID_ARGUMENT naming the field, through the real server;
idle library streams cannot starve health; every call is counted in /metrics and logged once."""

from __future__ import annotations

import base64
import json
import pickle
import re
import socket
import struct
import threading
import time
import urllib.request

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_status import rpc_status
from safetensors.numpy import save_file

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import artifact_pb2, audit_pb2, spec_pb2

from .conftest import ServerProcess, digits_spec, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    """A server with a metrics endpoint; its port is kept on the object for the tests."""
    port = free_port()
    running = ServerProcess(tmp_path_factory.mktemp("metered"), "--metrics-port", str(port)).start()
    running.metrics_port = port
    yield running
    running.stop()


def expect(call, code: str, reason: str, field: str) -> EffcapError:
    with pytest.raises(EffcapError) as info:
        call()
    assert (info.value.code, info.value.reason, info.value.field) == (code, reason, field), str(info.value)
    return info.value


def tiny_safetensors(path, metadata: dict[str, str] | None = None):
    import numpy as np

    save_file({"w": np.zeros(4, np.float32)}, str(path), metadata=metadata)
    return path


def test_undecodable_request_bytes_are_invalid_argument_with_one_log_line(metered):
    with grpc.insecure_channel(metered.address) as channel:
        raw = channel.unary_unary("/effcap.v1.AuditService/GetAudit")  # no serializer: bytes as given
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\xff\xff\xff\xff", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(info.value)
    assert status is not None and "request" in status.message
    log = metered.log()
    assert "Exception deserializing request" not in log
    assert len(re.findall(r"GetAudit: undecodable request of 4 bytes", log)) == 1


def test_an_undecodable_upload_chunk_is_invalid_argument(metered):
    with grpc.insecure_channel(metered.address) as channel:
        upload = channel.stream_unary("/effcap.v1.ArtifactService/UploadArtifact")
        with pytest.raises(grpc.RpcError) as info:
            upload(iter([b"\x0a\xff\xff"]), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_deeply_nested_json_in_a_safetensors_header_is_named(metered, tmp_path):
    header = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "nested.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with EffcapClient(metered.address) as client:
        error = expect(lambda: client.upload(path), "INVALID_ARGUMENT", "INVALID_SAFETENSORS_HEADER", "chunk")
    assert "JSON" in str(error)


def test_an_absurd_safetensors_header_length_is_named(metered, tmp_path):
    path = tmp_path / "absurd.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 60) + b'{"a": 1}')
    with EffcapClient(metered.address) as client:
        error = expect(lambda: client.upload(path), "INVALID_ARGUMENT", "SAFETENSORS_HEADER_TOO_LARGE", "chunk")
    assert str(1 << 60) in str(error)


@pytest.mark.parametrize("protocol", [0, 1])
def test_headerless_pickles_are_refused_as_pickles(metered, tmp_path, protocol):
    path = tmp_path / f"model{protocol}.pkl"
    path.write_bytes(pickle.dumps({"weights": list(range(100)), "name": "mlp"}, protocol=protocol))
    with EffcapClient(metered.address) as client:
        expect(lambda: client.upload(path), "INVALID_ARGUMENT", "PICKLE_REFUSED", "chunk")


@pytest.mark.parametrize(
    ("arch", "field"),
    [
        ("[" * 5000 + "]" * 5000, "model.metadata.effcap.arch"),
        (
            '{"family": "mlp", "input_shape": [1, 8, 8], "num_classes": 10, "hidden_sizes": [NaN]}',
            "model.metadata.effcap.arch.hidden_sizes[0]",
        ),
        (
            '{"family": "mlp", "input_shape": [1, 8, Infinity], "num_classes": 10}',
            "model.metadata.effcap.arch.input_shape[2]",
        ),
    ],
)
def test_bad_json_in_an_embedded_architecture_is_named(metered, tmp_path, arch, field):
    path = tiny_safetensors(tmp_path / "m.safetensors", {"effcap.arch": arch})
    with EffcapClient(metered.address) as client:
        model = client.upload(path)
        error = expect(
            lambda: client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", 1, 1)),
            "INVALID_ARGUMENT",
            "INVALID_SPEC",
            field,
        )
    assert "JSON" in str(error) or "finite" in str(error)


def test_a_non_finite_number_in_a_requested_architecture_is_named(metered, tmp_path):
    path = tiny_safetensors(tmp_path / "plain.safetensors")
    spec = digits_spec("true", 1, 1)
    spec.architecture.CopyFrom(struct_pb2.Struct())
    spec.architecture.update(
        {"family": "mlp", "input_shape": [1, 8, 8], "num_classes": 10, "hidden_sizes": [float("nan")]}
    )
    with EffcapClient(metered.address) as client:
        model = client.upload(path)
        error = expect(
            lambda: client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), spec),
            "INVALID_ARGUMENT",
            "INVALID_SPEC",
            "spec.architecture.hidden_sizes[0]",
        )
    assert "finite" in str(error)


@pytest.mark.parametrize(
    "token_json",
    [
        b"[1" + b"0" * 400 + b', "x"]',
        b'[1e999, "x"]',
        b"[" * 50_000 + b"]" * 50_000,
        b'[NaN, "x"]',
        b"[1" + b"0" * 5000 + b', "x"]',
        b'[true, "x"]',  # float(True) and float("1.5") once made these tokens the server never issued
        b'["1.5", "x"]',
        b"[1.5, 7]",
    ],
)
def test_page_tokens_with_huge_non_finite_or_nested_numbers_are_refused(metered, token_json):
    token = base64.urlsafe_b64encode(token_json).decode()
    with EffcapClient(metered.address) as client:
        expect(
            lambda: client._call(client.audits.ListAudits, audit_pb2.ListAuditsRequest(page_token=token)),
            "INVALID_ARGUMENT",
            "INVALID_PAGE_TOKEN",
            "page_token",
        )


def test_a_digest_with_trailing_whitespace_is_refused(metered):
    digest = artifact_pb2.Digest(sha256="a" * 64 + "\n", size_bytes=10)
    with EffcapClient(metered.address) as client:
        request = artifact_pb2.FindMissingArtifactsRequest(digests=[digest])
        expect(
            lambda: client._call(client.artifacts.FindMissingArtifacts, request),
            "INVALID_ARGUMENT",
            "INVALID_DIGEST",
            "digests[0].sha256",
        )


def test_health_list_answers_with_every_service(metered):
    with grpc.insecure_channel(metered.address) as channel:
        listed = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=10)
    assert listed.statuses[""].status == health_pb2.HealthCheckResponse.SERVING
    assert listed.statuses["effcap.v1.AuditService"].status == health_pb2.HealthCheckResponse.SERVING


def test_idle_reflection_streams_do_not_block_health_or_get_operation(metered):
    """32 reflection streams that never send: those beyond the long-call slots are refused, and short
    calls keep their reserved threads."""
    release = threading.Event()
    outcomes: list[str] = []

    def idle_requests():
        release.wait(60)
        return
        yield  # a generator that sends nothing until released

    channels = [grpc.insecure_channel(metered.address) for _ in range(32)]
    calls = [
        reflection_pb2_grpc.ServerReflectionStub(c).ServerReflectionInfo(idle_requests(), timeout=60) for c in channels
    ]

    def drain(call):
        try:
            for _ in call:
                pass
            outcomes.append("OK")
        except grpc.RpcError as error:
            outcomes.append(error.code().name)

    drains = [threading.Thread(target=drain, args=(call,)) for call in calls]
    for thread in drains:
        thread.start()
    try:
        time.sleep(2)  # every stream has reached the server
        with grpc.insecure_channel(metered.address) as channel:
            started = time.monotonic()
            check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            with EffcapClient(metered.address, timeout=5) as client:
                expect(lambda: client.get_operation("audits/0123"), "NOT_FOUND", "AUDIT_NOT_FOUND", "name")
            assert time.monotonic() - started < 5
        assert outcomes.count("RESOURCE_EXHAUSTED") == 32 - 24  # the default --max-long-calls
    finally:
        release.set()
        for thread in drains:
            thread.join(timeout=30)
        for channel in channels:
            channel.close()
    assert outcomes.count("OK") == 24


def scrape(server: ServerProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as answer:
        return answer.read().decode()


def sample(text: str, name: str) -> float:
    """One sample's value from the Prometheus text format (0 when absent)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_calls_by_method_and_status_and_the_access_log_has_one_line_each(metered):
    count = 'effcap_rpc_requests_total{code="NOT_FOUND",method="/effcap.v1.AuditService/GetAudit",principal="anonymous"}'
    timed = 'effcap_rpc_latency_seconds_count{method="/effcap.v1.AuditService/GetAudit"}'
    before = scrape(metered)
    with EffcapClient(metered.address) as client:
        for _ in range(3):
            with pytest.raises(EffcapError):
                client.get_audit("audits/nothing-here")
    text = scrape(metered)
    assert sample(text, count) - sample(before, count) == 3
    assert sample(text, timed) - sample(before, timed) == 3
    assert re.search(r'effcap_audits\{state="queued"\} \d', text)
    assert re.search(r"effcap_audit_queue_depth \d", text)
    lines = [
        json.loads(line.split(" INFO ", 1)[1]) for line in metered.log().splitlines() if "effcap.access INFO" in line
    ]
    get_audit = [
        line for line in lines if line["method"] == "/effcap.v1.AuditService/GetAudit" and line["code"] == "NOT_FOUND"
    ]
    assert len(get_audit) == 3
    assert {(line["principal"], line["code"]) for line in get_audit} == {("anonymous", "NOT_FOUND")}
    assert all(line["latency_ms"] >= 0 for line in get_audit)


def test_worker_exits_are_counted_by_cause(metered, demo_files):
    with EffcapClient(metered.address) as client:
        model = client.upload(demo_files[0])
        operation = client.create_audit(
            model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", seeds=1, epochs=1), skip_cache=True
        )
        done = client.wait(operation.name)
    assert done.done and not done.HasField("error")
    # The report is stored before the worker process has exited: its exit is counted a moment later.
    wait_for(lambda: sample(scrape(metered), 'effcap_worker_exits_total{cause="succeeded"}') == 1, timeout=30)
    assert sample(scrape(metered), 'effcap_audits{state="succeeded"}') == 1
