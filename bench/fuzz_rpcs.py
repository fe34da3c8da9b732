"""Fuzzing every RPC the server answers with random and mutated bytes: no INTERNAL, no crash.

    python bench/fuzz_rpcs.py --per-method 200 --seed 0

starts a real `effcap serve` on loopback (real SQLite in a temporary directory), sends each method
`--per-method` requests — in turn random bytes, a valid request with bytes flipped, inserted,
deleted or truncated, and a well-formed request whose fields hold edge values (empty, huge, negative,
NaN, odd strings) — as raw bytes (no client-side serializer, so the server decodes them), and
counts the status codes per method. Streaming-request methods get one to three such messages. It
fails (exit 1) on any INTERNAL or UNKNOWN status, on a server that stopped, or on a traceback or
grpc's "Exception deserializing" in the server log. `--with-key` issues an admin API key first (the server then
authenticates every call) and sends it with each request, so the fuzz reaches the servicers as a principal, admin-only
calls (ListActivity) included.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from effcap.protos.v1 import admin_pb2, artifact_pb2, audit_pb2, spec_pb2

DIGEST = artifact_pb2.Digest(sha256="ab" * 32, size_bytes=1234)
# (method, request streaming, response streaming, a valid request to mutate)
METHODS: list[tuple[str, bool, bool, Message]] = [
    (
        "/effcap.v1.ArtifactService/FindMissingArtifacts",
        False,
        False,
        artifact_pb2.FindMissingArtifactsRequest(digests=[DIGEST]),
    ),
    (
        "/effcap.v1.ArtifactService/UploadArtifact",
        True,
        False,
        artifact_pb2.UploadArtifactRequest(header=artifact_pb2.UploadHeader(digest=DIGEST)),
    ),
    (
        "/effcap.v1.ArtifactService/GetArtifact",
        False,
        False,
        artifact_pb2.GetArtifactRequest(digest=DIGEST),
    ),
    (
        "/effcap.v1.ArtifactService/DeleteArtifact",
        False,
        False,
        artifact_pb2.DeleteArtifactRequest(digest=DIGEST),
    ),
    (
        "/effcap.v1.AdminService/ListActivity",
        False,
        False,
        admin_pb2.ListActivityRequest(
            page_size=5,
            principal="fuzz",
            start_time=timestamp_pb2.Timestamp(seconds=1),
            end_time=timestamp_pb2.Timestamp(seconds=2),
        ),
    ),
    (
        "/effcap.v1.AuditService/CreateAudit",
        False,
        False,
        audit_pb2.CreateAuditRequest(
            request_id="r", model=DIGEST, dataset=spec_pb2.DatasetRef(builtin="digits"), spec=spec_pb2.AuditSpec(seed=1)
        ),
    ),
    (
        "/effcap.v1.AuditService/GetAudit",
        False,
        False,
        audit_pb2.GetAuditRequest(name="audits/abc"),
    ),
    (
        "/effcap.v1.AuditService/ListAudits",
        False,
        False,
        audit_pb2.ListAuditsRequest(page_size=5, page_token="WzEuMCwgImEiXQ=="),
    ),
    (
        "/effcap.v1.AuditService/StreamAuditEvents",
        False,
        True,
        audit_pb2.StreamAuditEventsRequest(name="audits/abc", after_sequence=3),
    ),
    (
        "/google.longrunning.Operations/GetOperation",
        False,
        False,
        operations_pb2.GetOperationRequest(name="audits/abc"),
    ),
    (
        "/google.longrunning.Operations/ListOperations",
        False,
        False,
        operations_pb2.ListOperationsRequest(page_size=3),
    ),
    (
        "/google.longrunning.Operations/CancelOperation",
        False,
        False,
        operations_pb2.CancelOperationRequest(name="audits/abc"),
    ),
    (
        "/google.longrunning.Operations/DeleteOperation",
        False,
        False,
        operations_pb2.DeleteOperationRequest(name="audits/abc"),
    ),
    (
        "/google.longrunning.Operations/WaitOperation",
        False,
        False,
        operations_pb2.WaitOperationRequest(name="audits/abc", timeout=duration_pb2.Duration(seconds=1)),
    ),
    (
        "/grpc.health.v1.Health/Check",
        False,
        False,
        health_pb2.HealthCheckRequest(service="effcap.v1.AuditService"),
    ),
    ("/grpc.health.v1.Health/List", False, False, health_pb2.HealthListRequest()),
    ("/grpc.health.v1.Health/Watch", False, True, health_pb2.HealthCheckRequest(service="")),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        True,
        True,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="effcap.v1.AuditService"),
    ),
]
FAILING_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
CALL_TIMEOUT_S = 3.0


def mutate(valid: bytes, rng: random.Random) -> bytes:
    data = bytearray(valid)
    for _ in range(rng.randint(1, 4)):
        action = rng.choice(("flip", "insert", "delete", "truncate", "extend"))
        if action == "flip" and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif action == "insert":
            data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        elif action == "delete" and data:
            del data[rng.randrange(len(data))]
        elif action == "truncate" and data:
            del data[rng.randrange(len(data)) :]
        elif action == "extend":
            data.extend(rng.randbytes(rng.randint(1, 64)))
    return bytes(data)


STRINGS = (
    "",
    "audits/",
    "audits/abc",
    "a" * 64,
    "ab" * 32 + "\n",
    "builtin:digits",
    "\u0000",
    "\u00e9" * 3,
    "x" * 20_000,
)
NUMBERS = {
    "int32": (0, -1, 1, 2**31 - 1, -(2**31)),
    "uint32": (0, 1, 2**32 - 1),
    "int64": (0, -1, 1, 2**63 - 1, -(2**63)),
    "uint64": (0, 1, 2**64 - 1),
    "double": (0.0, -1.0, 0.5, 1e308, float("nan"), float("inf"), float("-inf")),
}
FIELD_KINDS = {
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_SINT32: "int32",
    FieldDescriptor.TYPE_SFIXED32: "int32",
    FieldDescriptor.TYPE_ENUM: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED32: "uint32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "int64",
    FieldDescriptor.TYPE_SFIXED64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_FIXED64: "uint64",
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "double",
}


def random_message(cls: type[Message], rng: random.Random, depth: int = 0) -> Message:
    """A well-formed message of `cls` whose fields hold edge values: empty, huge, negative, NaN, odd strings."""
    message = cls()
    for field in cls.DESCRIPTOR.fields:
        if rng.random() < 0.4 or (field.message_type is not None and field.message_type.GetOptions().map_entry):
            continue
        repeated = field.is_repeated
        for _ in range(rng.randint(1, 3) if repeated else 1):
            target = getattr(message, field.name)
            if field.message_type is not None:
                if depth >= 3:
                    break
                value = random_message(GetMessageClass(field.message_type), rng, depth + 1)
                (target.add() if repeated else target).CopyFrom(value)
                continue
            if field.type == FieldDescriptor.TYPE_STRING:
                value = rng.choice(STRINGS)
            elif field.type == FieldDescriptor.TYPE_BYTES:
                value = rng.randbytes(rng.randint(0, 64))
            elif field.type == FieldDescriptor.TYPE_BOOL:
                value = rng.random() < 0.5
            else:
                value = rng.choice(NUMBERS[FIELD_KINDS[field.type]])
            if repeated:
                target.append(value)
            else:
                setattr(message, field.name, value)
    return message


def payload(valid: Message, rng: random.Random, index: int) -> bytes:
    """Random bytes, a valid request with bytes mutated, or a well-formed request with edge values, in turn."""
    kind = index % 3
    if kind == 0:
        return rng.randbytes(rng.randint(0, 512))
    if kind == 1:
        return mutate(valid.SerializeToString(), rng)
    return random_message(type(valid), rng).SerializeToString()


def call_once(
    channel: grpc.Channel,
    method: str,
    request_streaming: bool,
    response_streaming: bool,
    messages: list[bytes],
    metadata: tuple[tuple[str, str], ...] = (),
) -> grpc.StatusCode:
    options = {"timeout": CALL_TIMEOUT_S, "metadata": metadata}
    try:
        if request_streaming and response_streaming:
            for _ in channel.stream_stream(method)(iter(messages), **options):
                pass
        elif request_streaming:
            channel.stream_unary(method)(iter(messages), **options)
        elif response_streaming:
            for _ in channel.unary_stream(method)(messages[0], **options):
                pass
        else:
            channel.unary_unary(method)(messages[0], **options)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    ready = data_dir / "ready"
    log = (data_dir / "server.log").open("w")
    command = [
        sys.executable,
        "-m",
        "effcap.clients.cli",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--ready-file",
        str(ready),
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    while not ready.exists():
        if process.poll() is not None:
            raise SystemExit(f"server exited: {(data_dir / 'server.log').read_text()[-2000:]}")
        time.sleep(0.05)
    return process, ready.read_text().strip()


def issue_key(data_dir: Path) -> str:
    """An admin key for the fuzzing principal, made with the CLI as an operator would (the token is the last line)."""
    command = [
        sys.executable,
        "-m",
        "effcap.clients.cli",
        "admin",
        "keys",
        "create",
        "fuzz",
        "--admin",
        "--data-dir",
        str(data_dir),
    ]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]


def fuzz(address: str, per_method: int, seed: int, threads: int, token: str | None = None) -> dict[str, Counter]:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    results: dict[str, Counter] = {}
    with grpc.insecure_channel(address) as channel, ThreadPoolExecutor(threads) as pool:
        for method_index, (method, request_streaming, response_streaming, valid) in enumerate(METHODS):
            rng = random.Random(seed * 1000 + method_index)
            batches = []
            for index in range(per_method):
                count = rng.randint(1, 3) if request_streaming else 1
                batches.append([payload(valid, rng, index + k) for k in range(count)])
            call: Callable[[list[bytes]], grpc.StatusCode] = (
                lambda messages, m=method, rs=request_streaming, ps=response_streaming: call_once(
                    channel, m, rs, ps, messages, metadata
                )
            )
            results[method] = Counter(code.name for code in pool.map(call, batches))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-method", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--with-key", action="store_true", help="issue an API key and fuzz as its principal")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="effcap-fuzz-") as tmp:
        data_dir = Path(tmp)
        token = issue_key(data_dir) if args.with_key else None
        process, address = start_server(data_dir)
        try:
            started = time.monotonic()
            results = fuzz(address, args.per_method, args.seed, args.threads, token)
            elapsed = time.monotonic() - started
            alive = process.poll() is None
        finally:
            process.terminate()
            process.wait(timeout=60)
        log = (data_dir / "server.log").read_text()
    failures = 0
    print(f"{'method':66} {'calls':>6}  codes")
    for method, codes in results.items():
        failures += sum(codes[code.name] for code in FAILING_CODES)
        print(f"{method:66} {sum(codes.values()):6}  {dict(sorted(codes.items()))}")
    tracebacks, deserializing = log.count("Traceback"), log.count("Exception deserializing")
    undecodable = log.count("undecodable request")
    total = sum(sum(codes.values()) for codes in results.values())
    print(
        f"{total} calls in {elapsed:.1f} s; INTERNAL/UNKNOWN: {failures}; server alive: {alive}; "
        f"log: {tracebacks} tracebacks, {deserializing} 'Exception deserializing', "
        f"{undecodable} undecodable-request lines"
    )
    return 0 if failures == 0 and alive and tracebacks == 0 and deserializing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
