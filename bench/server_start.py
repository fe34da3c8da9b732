"""Seconds from `effcap serve` to a SERVING health answer, over several fresh starts.

    python bench/server_start.py --runs 5

Each run starts the real command on a fresh data directory and a free loopback port, waits for its
ready file (written once it listens), asks grpc.health.v1 Check until it answers SERVING, and stops
it. The server imports neither torch nor scipy (its input-validation process does, after SERVING), so
this is interpreter start, grpc, protobuf and SQLite. Prints each run, the median and the maximum, and
the load average before the first run, since a busy machine slows every start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def seconds_to_serving(data_dir: Path) -> float:
    ready = data_dir / "ready"
    command = [sys.executable, "-m", "effcap.clients.cli", "serve", "--port", "0", "--data-dir", str(data_dir)]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--ready-file", str(ready)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not ready.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}")
            time.sleep(0.005)
        with grpc.insecure_channel(ready.read_text().strip()) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while (
                health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                != health_pb2.HealthCheckResponse.SERVING
            ):
                time.sleep(0.005)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.runs):
            seconds = seconds_to_serving(Path(scratch) / f"run{run}")
            times.append(seconds)
            print(f"run {run + 1}: {seconds:.2f} s to SERVING", flush=True)
    print(f"{os.cpu_count()} CPUs, load average {load} before the first run")
    print(f"start to SERVING over {args.runs} runs: median {statistics.median(times):.2f} s, max {max(times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
