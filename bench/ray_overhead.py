"""The Ray executor against the local one on this machine: per-batch overhead, time to first result, total.

The same small audit (the digits MLP of the demo, `--trials` random- and true-label trials cut into batches
of `--batch-trials`) runs through `TrialExecutor` (in this process) and `RayTrialExecutor` (tasks on a local
Ray cluster: a head with no CPUs and one worker node with `--task-cpus` CPUs, so both executors train one
batch at a time on the same number of threads). Ray's cost per batch is the difference of the totals over
the number of batches, beside the round trip of an empty task. Then a model of a 1,000-trial audit on 1, 8
and 64 GPUs from those numbers (assumptions printed with it).

    nice -n 19 .venv/bin/python bench/ray_overhead.py --trials 8 --batch-trials 1 --epochs 20
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from effcap.capacity.analyses.trial_batch import DatasetSource, TrialPlan  # noqa: E402
from effcap.capacity.analyses.trial_executor import TrialExecutor, TrialSources  # noqa: E402
from effcap.capacity.data.datasets import digits  # noqa: E402
from effcap.capacity.models import parse_architecture  # noqa: E402
from effcap.capacity.specs import Condition, ConditionKind, TrainingSpec  # noqa: E402
from effcap.service.executors.config import ExecutorConfig  # noqa: E402

MLP = parse_architecture({"family": "mlp", "hidden_sizes": [512, 512], "input_shape": [1, 8, 8], "num_classes": 10})
# DESIGN.md §5, one H200: an MLP 3x512 trained 40-55x faster as 128 vmapped trials than one trial in the
# reference loop; the model takes the low end as a GPU trial's speed-up over one CPU thread's trial here.
GPU_SPEEDUP = 40.0


def timed_run(
    make: Callable[[Callable[[str, int], None]], TrialExecutor], plans: list[TrialPlan], training: TrainingSpec
) -> tuple[float, float, int]:
    """(seconds to the first finished batch, seconds in all, batches) of the executor `make(on_batch)` builds."""
    finished: list[float] = []
    executor = make(lambda how, trials: finished.append(time.perf_counter()))
    start = time.perf_counter()
    executor.run(MLP, digits(), plans, training, torch.device("cpu"))
    return finished[0] - start, time.perf_counter() - start, len(finished)


def empty_task_round_trip(ray, repeats: int = 20) -> float:
    """Median seconds of submitting a task that does nothing and getting its result (a warm worker)."""
    noop = ray.remote(num_cpus=1)(lambda: None)
    ray.get(noop.remote())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ray.get(noop.remote())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--batch-trials", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--task-cpus", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.task_cpus)
    kinds = [Condition(kind=ConditionKind.TRUE_LABELS), Condition(kind=ConditionKind.RANDOM_LABELS)]
    plans = [TrialPlan(kinds[i % 2], i // 2, 1000 + i) for i in range(args.trials)]
    training = TrainingSpec(learning_rate=0.1, batch_size=128, max_epochs=args.epochs, lr_decay_per_epoch=1.0)
    sources = TrialSources(DatasetSource(builtin="digits"))

    from ray.cluster_utils import Cluster

    from effcap.service.executors.ray_executor import RayTrialExecutor, connect

    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's session files, away from the machine's /tmp/ray
    os.environ["RAY_TMPDIR"] = temp
    os.mkdir(os.path.join(temp, "ray"))
    head = {"num_cpus": 0, "object_store_memory": 80 << 20, "include_dashboard": False, "temp_dir": f"{temp}/ray"}
    cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
    cluster.add_node(num_cpus=args.task_cpus, object_store_memory=80 << 20)
    cluster.wait_for_nodes()
    try:
        config = ExecutorConfig(
            kind="ray", ray_address=cluster.address, ray_task_cpus=args.task_cpus, max_batch_trials=args.batch_trials
        )
        ray_executor = lambda on_batch: RayTrialExecutor(config, "cpu", sources, None, on_batch)  # noqa: E731
        local_executor = lambda on_batch: TrialExecutor(sources, None, args.batch_trials, on_batch)  # noqa: E731
        round_trip = empty_task_round_trip(connect(cluster.address))
        cold_first, _, _ = timed_run(ray_executor, plans[:1], training)  # the first task imports torch in a new worker
        rows = {"local": [], "ray": []}
        for _ in range(args.repeats):  # interleaved, so load from other processes falls on both alike
            rows["local"].append(timed_run(local_executor, plans, training))
            rows["ray"].append(timed_run(ray_executor, plans, training))
    finally:
        import ray

        ray.shutdown()  # this process is the driver: it leaves before the cluster goes
        cluster.shutdown()
    batches = rows["local"][0][2]
    local_first, local_total = (statistics.median(r[i] for r in rows["local"]) for i in (0, 1))
    ray_first, ray_total = (statistics.median(r[i] for r in rows["ray"]) for i in (0, 1))
    overhead = (ray_total - local_total) / batches
    # Below the empty task's round trip the difference is noise (load from other processes): take the round trip.
    modelled = max(overhead, round_trip)
    per_trial = local_total / args.trials
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}; "
        f"{args.task_cpus} thread(s) per batch"
    )
    print(
        f"audit: {args.trials} trials (MLP 64-512-512-10 on digits, {args.epochs} epochs, batch 128), "
        f"{batches} batches of {args.batch_trials}"
    )
    print(f"{'':8} {'first result s':>15} {'total s':>9}   (median of {args.repeats})")
    print(f"{'local':8} {local_first:15.2f} {local_total:9.2f}")
    print(f"{'ray':8} {ray_first:15.2f} {ray_total:9.2f}")
    print(
        f"ray overhead per batch: {overhead:.3f} s (total difference / batches); "
        f"empty task round trip {1000 * round_trip:.1f} ms"
    )
    print(f"first task on a fresh Ray worker (torch import, dataset load, training 1 trial): {cold_first:.2f} s")
    print(f"per-trial training cost here: {per_trial:.2f} s")
    print()
    trial_gpu = per_trial / GPU_SPEEDUP
    print(
        f"model: 1,000 trials in batches of b; a GPU trains a batch of b trials in b x {trial_gpu:.3f} s "
        f"(CPU trial / {GPU_SPEEDUP:g});"
    )
    print(
        f"each batch costs {modelled:.3f} s of Ray overhead plus {cold_first:.1f} s once per GPU worker "
        "(cold start); batches run in waves"
    )
    print(f"{'GPUs':>5} {'b':>4} {'batches':>8} {'waves':>6} {'seconds':>9} {'speed-up':>9}")
    for b in (16, 64):
        single = None
        for gpus in (1, 8, 64):
            count = math.ceil(1000 / b)
            waves = math.ceil(count / gpus)
            seconds = cold_first + waves * (modelled + b * trial_gpu)
            single = single or seconds
            print(f"{gpus:5d} {b:4d} {count:8d} {waves:6d} {seconds:9.1f} {single / seconds:8.1f}x")


if __name__ == "__main__":
    main()
