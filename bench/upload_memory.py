"""Server memory during a large upload: chunks must stream to disk, not accumulate in memory.

    python bench/upload_memory.py --megabytes 1024

starts a real server, uploads a synthetic safetensors file of that size through the client, samples
the server's resident memory (VmRSS) every 10 ms, and prints the growth over its idle baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from effcap.clients.sdk import CHUNK_BYTES, EffcapClient
from effcap.protos.v1 import artifact_pb2


def synthetic_safetensors(size_bytes: int) -> tuple[artifact_pb2.Digest, Callable[[], Iterator[bytes]]]:
    """A valid safetensors file of exactly `size_bytes` (one uint8 tensor of zeros), as chunks."""
    header_length = 128
    payload = size_bytes - 8 - header_length
    header = json.dumps({"blob": {"dtype": "U8", "shape": [payload], "data_offsets": [0, payload]}}).encode()
    header = header.ljust(header_length, b" ")
    zeros = bytes(CHUNK_BYTES)

    def chunks() -> Iterator[bytes]:
        yield struct.pack("<Q", header_length) + header
        remaining = payload
        while remaining:
            step = min(remaining, CHUNK_BYTES)
            yield zeros[:step]
            remaining -= step

    hasher = hashlib.sha256()
    for chunk in chunks():
        hasher.update(chunk)
    return artifact_pb2.Digest(sha256=hasher.hexdigest(), size_bytes=size_bytes), chunks


def upload_chunks(client: EffcapClient, digest: artifact_pb2.Digest, chunks: Callable[[], Iterator[bytes]]) -> artifact_pb2.Artifact:
    def requests() -> Iterator[artifact_pb2.UploadArtifactRequest]:
        yield artifact_pb2.UploadArtifactRequest(header=artifact_pb2.UploadHeader(digest=digest))
        for chunk in chunks():
            yield artifact_pb2.UploadArtifactRequest(chunk=chunk)

    return client.artifacts.UploadArtifact(requests(), timeout=600)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def rss_growth_during(pid: int, action: Callable[[], object]) -> tuple[object, int, int]:
    """(action's result, baseline RSS KiB, largest RSS growth KiB while it ran)."""
    baseline = rss_kib(pid)
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return result, baseline, peak - baseline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.integration.conftest import ServerProcess

    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess(Path(scratch) / "server").start()
        try:
            digest, chunks = synthetic_safetensors(args.megabytes << 20)
            with EffcapClient(server.address) as client:
                started = time.perf_counter()
                artifact, baseline, growth = rss_growth_during(server.process.pid, lambda: upload_chunks(client, digest, chunks))
                seconds = time.perf_counter() - started
        finally:
            server.stop()
    print(f"uploaded {args.megabytes} MiB in {seconds:.1f} s ({args.megabytes / seconds:.0f} MiB/s), format {artifact_pb2.ArtifactFormat.Name(artifact.format)}")
    print(f"server RSS baseline {baseline / 1024:.0f} MiB, largest growth during upload {growth / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
