"""50 authenticated clients for 60 s against a real server on loopback while audits run: latency per method.

    python bench/load_clients.py --clients 50 --seconds 60

starts `effcap serve` on loopback (real SQLite in a temporary directory), issues one API key per client,
and runs the clients as `--processes` processes of threads (so the clients' own GIL does not time the
server). Each client uploads the demo checkpoint as its own principal, creates one small audit (so audits
queue and one runs throughout), then for `--seconds` loops over GetAudit, GetOperation (its own audit),
ListAudits, FindMissingArtifacts and GetArtifact, timing every call. Prints p50/p99/max per method, the
status codes, and the audits that ran; exits 1 on any status other than OK.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.clients.spec_args import randomization_spec
from effcap.protos.v1 import artifact_pb2, audit_pb2, spec_pb2

METHODS = ("GetAudit", "GetOperation", "ListAudits", "FindMissingArtifacts", "GetArtifact")


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    ready = data_dir / "ready"
    command = [sys.executable, "-m", "effcap.clients.cli", "serve", "--port", "0", "--data-dir", str(data_dir)]
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen([*command, "--ready-file", str(ready)], stdout=log, stderr=subprocess.STDOUT)
    while not ready.exists():
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {(data_dir / 'server.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return process, ready.read_text().strip()


def one_client(address: str, token: str, model: Path, seed: int, seconds: float, results: list) -> None:
    """One principal's session: its audit, then short calls until the time is up."""
    timings: dict[str, list[float]] = {method: [] for method in METHODS}
    codes: Counter = Counter()
    with EffcapClient(address, token=token, timeout=60) as client:
        digest = client.upload(model)
        spec = spec_pb2.AuditSpec(seed=seed, randomization=randomization_spec("true", 1, 0.1, 1.0, 128, 3, 1.0))
        name = client.create_audit(digest, spec_pb2.DatasetRef(builtin="digits"), spec).name
        calls = {
            "GetAudit": lambda: client.audits.GetAudit(audit_pb2.GetAuditRequest(name=name), timeout=60),
            "GetOperation": lambda: client.get_operation(name),
            "ListAudits": lambda: client.audits.ListAudits(audit_pb2.ListAuditsRequest(page_size=20), timeout=60),
            "FindMissingArtifacts": lambda: client.artifacts.FindMissingArtifacts(
                artifact_pb2.FindMissingArtifactsRequest(digests=[digest]), timeout=60
            ),
            "GetArtifact": lambda: client.artifacts.GetArtifact(
                artifact_pb2.GetArtifactRequest(digest=digest), timeout=60
            ),
        }
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for method, call in calls.items():
                start = time.perf_counter()
                try:
                    call()
                    codes["OK"] += 1
                except EffcapError as error:
                    codes[error.code] += 1
                except grpc.RpcError as error:  # the raw stubs' calls
                    codes[error.code().name] += 1
                timings[method].append(time.perf_counter() - start)
    results.append((timings, codes))


def run_process(address: str, tokens: list[tuple[str, int]], model: Path, seconds: float) -> list:
    results: list = []
    threads = [
        threading.Thread(target=one_client, args=(address, token, model, seed, seconds, results))
        for token, seed in tokens
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()
    from effcap.capacity.demo_assets import write_demo_checkpoint
    from effcap.service.auth.keys import KeyRing

    with tempfile.TemporaryDirectory() as root:
        data_dir, model = Path(root) / "data", Path(root) / "mlp.safetensors"
        data_dir.mkdir()
        write_demo_checkpoint(model)
        keys = KeyRing(data_dir / "effcap.sqlite3")
        tokens = [(keys.create(f"client{i}")[1], i) for i in range(args.clients)]
        root_token = keys.create("ops", admin=True)[1]
        keys.close()
        server, address = start_server(data_dir)
        print(f"server at {address}; {args.clients} clients in {args.processes} processes for {args.seconds:g} s")
        try:
            shares = [tokens[i :: args.processes] for i in range(args.processes)]
            with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
                started = time.monotonic()
                parts = pool.starmap(run_process, [(address, share, model, args.seconds) for share in shares])
                elapsed = time.monotonic() - started
            with EffcapClient(address, token=root_token) as ops:
                audits = ops.audits.ListAudits(audit_pb2.ListAuditsRequest(page_size=1000), timeout=60).audits
        finally:
            server.terminate()
            server.wait(timeout=60)
    results = [result for part in parts for result in part]
    codes = sum((c for _, c in results), Counter())
    print(f"{len(results)} clients finished in {elapsed:.0f} s; statuses: {dict(codes)}")
    states = Counter(audit_pb2.AuditState.Name(a.state).removeprefix("AUDIT_STATE_") for a in audits)
    print(f"audits: {dict(states)}")
    print("| method | calls | calls/s | p50 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for method in METHODS:
        values = [v for timings, _ in results for v in timings[method]]
        rate = len(values) / args.seconds
        p50, p99, top = (1000 * x for x in (statistics.median(values), percentile(values, 0.99), max(values)))
        print(f"| {method} | {len(values):,} | {rate:.0f} | {p50:.1f} | {p99:.1f} | {top:.0f} |")
    print(f"load average at the end: {os.getloadavg()}")
    return 0 if set(codes) == {"OK"} else 1


if __name__ == "__main__":
    sys.exit(main())
