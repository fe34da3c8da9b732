"""Audits on a busy CPU: the same small audit idle and beside CPU-bound processes (issue 17).

    python bench/thread_contention.py --repeats 3

Starts real servers (`effcap serve`) with two thread settings and times a fixed audit end to end
(CreateAudit to done, worker start included) through the client:

- before: what every worker did until issue 17 - torch's default pool, one thread per core of the
  machine, with libgomp's default waits (spin 300,000 times, then sleep). Reproduced with the
  product's own knobs: `--worker-threads <cores>` and `GOMP_SPINCOUNT=300000` (an operator's wait
  setting is kept as given; with no more threads than CPUs, libgomp does not throttle that count).
- after: the defaults (the CPUs the server is given, divided among its running audits; threads spin briefly
  when those CPUs are idle as the worker starts, else wait passively). Each run prints the waits chosen.

Each repetition runs, interleaved: before idle, before busy, after idle, after busy, where "busy" is
the same audit with `--burners` CPU-bound processes running. It then times two audits submitted at
once to a `--max-running-audits 2` server against one audit alone on that server, for both settings.
The paired ratios (busy / idle of the same repetition and setting) are printed with min and median.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from effcap.clients.demo import server_process
from effcap.clients.sdk import EffcapClient
from effcap.clients.spec_args import randomization_spec
from effcap.protos.v1 import spec_pb2
from effcap.service.executors.cpu_load import busy_cpus

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
LIBGOMP_DEFAULT_SPIN_COUNT = "300000"


def settings(cores: int) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    """Setting name -> (extra `effcap serve` arguments, environment), for one audit at a time."""
    clean = {name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES}
    before = (("--worker-threads", str(cores)), clean | {"GOMP_SPINCOUNT": LIBGOMP_DEFAULT_SPIN_COUNT})
    return {"before": before, "after": ((), clean)}


def settle(timeout_s: float = 10.0) -> None:
    """Wait until the CPUs are idle: the other server's last worker may still be exiting (torch's teardown takes
    a CPU for a few hundred ms), and an idle run must start on an idle machine, as a worker probes it at start."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (busy_cpus(os.sched_getaffinity(0)) or 0.0) > 0.3:
        pass


@contextmanager
def burners(count: int) -> Iterator[None]:
    """`count` CPU-bound processes (pure Python loops) for the duration of the block."""
    processes = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)  # let the scheduler see them as CPU-bound before the audit starts
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


class AuditTimer:
    """Uploads the demo inputs once per server and times one fixed audit, a new seed each time (no cache hits)."""

    def __init__(self, client: EffcapClient, model: Path, data: Path, epochs: int) -> None:
        self._client = client
        self._model, self._data = client.upload(model), client.upload(data)
        self._epochs = epochs
        self._seed = 0
        self.last_waits = ""  # how the last audit's OpenMP threads waited, as its report says

    def seconds(self) -> float:
        """Wall time of one audit: two random-label trials that run all their epochs (lr 0.01 fits nothing)."""
        self._seed += 1
        spec = spec_pb2.AuditSpec(
            seed=self._seed, randomization=randomization_spec("random", 2, 0.01, 1.0, 128, self._epochs, 1.0)
        )
        start = time.perf_counter()
        dataset = spec_pb2.DatasetRef(artifact=self._data)
        operation = self._client.wait(self._client.create_audit(self._model, dataset, spec).name)
        elapsed = time.perf_counter() - start
        report = self._client.report_of(operation)
        assert report.randomization.conditions[0].fitted_fraction == 0, "the timed audit must not stop early"
        self.last_waits = report.environment.cpu_threads_source.rsplit("; ", 1)[-1]
        return elapsed

    def concurrent_seconds(self, count: int) -> list[float]:
        """Wall time of each of `count` audits created at once."""
        times: list[float] = [0.0] * count

        def run(index: int) -> None:
            times[index] = self.seconds()

        workers = [threading.Thread(target=run, args=(index,)) for index in range(count)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return times


def paired(numerators: list[float], denominators: list[float]) -> str:
    ratios = [n / d for n, d in zip(numerators, denominators, strict=True)]
    return f"min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burners", type=int, default=2, help="CPU-bound processes beside the busy runs")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each of the audit's two trials")
    parser.add_argument("--skip-concurrent", action="store_true", help="skip the two-audits-at-once part")
    args = parser.parse_args()

    from effcap.capacity.demo_assets import write_demo_checkpoint, write_digits_npz

    cores = os.cpu_count() or 1
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model, data = root / "mlp.safetensors", root / "digits.npz"
        write_demo_checkpoint(model)
        write_digits_npz(data)
        print(
            f"# {platform.machine()}, {cores} CPUs (affinity {len(os.sched_getaffinity(0))}), python {platform.python_version()}"
        )
        print(f"# load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(
            f"# audit: demo MLP on digits, 2 random-label trials x {args.epochs} epochs; {args.burners} burners when busy"
        )
        times = one_audit_at_a_time(root, model, data, cores, args, console)
        for name, runs in times.items():
            idle, busy = runs["idle"], runs["busy"]
            print(f"{name}: idle median {statistics.median(idle):.1f} s, busy median {statistics.median(busy):.1f} s; "
                  f"busy/idle {paired(busy, idle)}")  # fmt: skip
        print(f"after/before, idle: {paired(times['after']['idle'], times['before']['idle'])}")
        if not args.skip_concurrent:
            two_audits_at_once(root, model, data, cores, args, console)
        print(f"# load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def one_audit_at_a_time(
    root: Path, model: Path, data: Path, cores: int, args: argparse.Namespace, console: Console
) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {name: {"idle": [], "busy": []} for name in settings(cores)}
    with server_process(root / "before", console, *settings(cores)["before"]) as before_address:
        with server_process(root / "after", console, *settings(cores)["after"]) as after_address:
            with EffcapClient(before_address) as before_client, EffcapClient(after_address) as after_client:
                timers = {
                    "before": AuditTimer(before_client, model, data, args.epochs),
                    "after": AuditTimer(after_client, model, data, args.epochs),
                }
                for timer in timers.values():
                    timer.seconds()  # warm-up: page cache, first worker start
                for repeat in range(args.repeats):
                    for name, timer in timers.items():
                        settle()
                        times[name]["idle"].append(timer.seconds())
                        idle_waits = timer.last_waits
                        with burners(args.burners):
                            times[name]["busy"].append(timer.seconds())
                        print(f"  repeat {repeat + 1} {name}: idle {times[name]['idle'][-1]:.1f} s ({idle_waits}), "
                              f"busy {times[name]['busy'][-1]:.1f} s ({timer.last_waits})", flush=True)  # fmt: skip
    return times


def two_audits_at_once(
    root: Path, model: Path, data: Path, cores: int, args: argparse.Namespace, console: Console
) -> None:
    for name, (serve_args, environment) in settings(cores).items():
        # Before issue 17 every worker took one thread per core, however many ran at once.
        serve_args = ("--max-running-audits", "2", *serve_args)
        with server_process(root / f"{name}-two", console, serve_args, environment) as address:
            with EffcapClient(address) as client:
                timer = AuditTimer(client, model, data, args.epochs)
                timer.seconds()
                alone, together = [], []
                for _ in range(args.repeats):
                    alone.append(timer.seconds())
                    together.append(max(timer.concurrent_seconds(2)))
                print(f"{name}, --max-running-audits 2: one alone median {statistics.median(alone):.1f} s, "
                      f"two at once (slower of the two) median {statistics.median(together):.1f} s; "
                      f"ratio {paired(together, alone)}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
