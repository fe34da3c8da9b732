"""Memory at CreateAudit when a small compressed dataset inflates: the server's, and its validation processes'.

    python bench/create_audit_memory.py --values 268435456 [--serve-arg=--max-inflated-bytes=1073741824]

Starts a real server (`--max-training-examples 1000`, so every audit is refused after its inputs are
loaded and none trains), uploads the demo checkpoint and an .npz whose x_train is `--values` uint8
zeros in digits' shape (compressed to a fraction of a MiB), then sends 1, and then 3 concurrent,
CreateAudit calls for it. VmRSS is sampled every 10 ms: the server's peak growth over its baseline,
and the peak of the summed RSS of its input-validation processes (effcap.service.inflation_worker;
none before issue 13 moved the loading out of the server).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import spec_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.upload_memory import rss_kib  # noqa: E402


def inflating_npz(path: Path, values: int) -> None:
    examples = values // 64
    x = np.zeros((examples, 1, 8, 8), np.uint8)
    np.savez_compressed(path, x_train=x, y_train=(np.arange(examples) % 10).astype(np.uint8))


def validation_pids(server_pid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"inflation_worker" in (entry / "cmdline").read_bytes():
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == server_pid:
                    pids.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return pids


def peaks_during(server_pid: int, action: Callable[[], object]) -> tuple[object, int, int, int]:
    """(action's result, server baseline KiB, server peak growth KiB, validation processes' peak summed RSS KiB)."""
    baseline = rss_kib(server_pid)
    peak, children_peak = baseline, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, children_peak
        while not done.is_set():
            peak = max(peak, rss_kib(server_pid))
            total = 0
            for pid in validation_pids(server_pid):
                try:
                    total += rss_kib(pid)
                except (OSError, RuntimeError):
                    pass
            children_peak = max(children_peak, total)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return result, baseline, peak - baseline, children_peak


def concurrent_creates(address: str, model, dataset, spec, count: int) -> list[str]:
    outcomes: list[str] = []

    def create() -> None:
        with EffcapClient(address, timeout=1800) as client:  # a loaded 2-core machine took minutes before issue 13
            try:
                client.create_audit(model, dataset, spec, skip_cache=True)
                outcomes.append("OK")
            except EffcapError as error:
                outcomes.append(f"{error.code} {error.reason} ({error.field})")

    threads = [threading.Thread(target=create) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=1 << 28, help="uint8 values in x_train")
    parser.add_argument("--serve-arg", action="append", default=[], help="an extra `effcap serve` argument")
    args = parser.parse_args()
    from effcap.capacity.demo_assets import write_demo_checkpoint
    from tests.integration.conftest import ServerProcess, digits_spec

    with tempfile.TemporaryDirectory() as scratch:
        model_path, data_path = Path(scratch) / "mlp.safetensors", Path(scratch) / "inflating.npz"
        write_demo_checkpoint(model_path)
        inflating_npz(data_path, args.values)
        print(f"dataset: {args.values:,} uint8 values, {data_path.stat().st_size / 2**20:.2f} MiB compressed")
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; serve {' '.join(args.serve_arg)}")
        server = ServerProcess(Path(scratch) / "server", "--max-training-examples", "1000", *args.serve_arg).start()
        try:
            with EffcapClient(server.address) as client:
                model = client.upload(model_path)
                dataset = spec_pb2.DatasetRef(artifact=client.upload(data_path))
            spec = digits_spec("true", seeds=1, epochs=1)
            for count in (1, 3):
                run = lambda count=count: concurrent_creates(server.address, model, dataset, spec, count)  # noqa: E731
                outcomes, baseline, growth, children = peaks_during(server.process.pid, run)
                print(
                    f"{count} concurrent CreateAudit: server RSS baseline {baseline / 1024:.0f} MiB, peak growth "
                    f"{growth / 1024:.0f} MiB; validation processes' peak RSS {children / 1024:.0f} MiB; {outcomes}"
                )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
