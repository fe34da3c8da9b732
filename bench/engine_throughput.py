"""Engine throughput against the reference loop, measured in the same run.

    python bench/engine_throughput.py [--device cuda] [--ks 1,8,32,128] [--steps 20]

Reference: what public code does (e.g. pluskid/fitting-random-labels) — one trial at a time, a
DataLoader over a TensorDataset (shuffled, batch 128), torch.optim.SGD with momentum, and a pass over
the train split each epoch to measure train accuracy. Engine: effcap's train_trials on K trials with
random labels, each strategy forced (vmap, grouped where the family folds, with --compile also
grouped-compiled, and sequential), with the
engine's own choice marked (the CPU rule, or on a GPU its timed probe). Both train one epoch of `steps` steps
and evaluate once, on CIFAR-shaped inputs (3x32x32, 10 classes).

Other processes on a shared machine move every timing, so each engine run is paired with a reference
run next to it (A then B, B then A on alternate repetitions) over `--repeats` repetitions, and the ratio
reported is of each pair: its median and its minimum. Prints samples/s (training examples per second, all
trials together, median), the paired ratios to the reference, achieved TFLOP/s (6 x multiply-adds per
training example) and, on CUDA, peak memory per trial. `--record` appends the table, the machine, the
date, the load average and the command to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from effcap.capacity.checkpoint import load_checkpoint
from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.device import synchronize
from effcap.capacity.engine.grouped import folds
from effcap.capacity.engine.strategy import (
    EngineOptions,
    choose_strategy,
    measure_strategy,
    stacking_candidates,
    train_trials,
)
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.models.flops import multiply_adds
from effcap.capacity.specs import TrainingSpec

BATCH = 128
RESULTS = Path(__file__).with_name("RESULTS.md")
MODELS = {
    "mlp_3x512": {"family": "mlp", "hidden_sizes": [512, 512, 512]},
    "small_cnn": {"family": "small_cnn", "channels": [64, 128, 128]},
    # Smaller networks, for the CPU strategy rule (strategy.CPU_STACK_MAX_MULTIPLY_ADDS_PER_LAYER) on 1x8x8 digits.
    "mlp_1x128": {"family": "mlp", "hidden_sizes": [128]},
    "mlp_1x512": {"family": "mlp", "hidden_sizes": [512]},
    "mlp_2x512": {"family": "mlp", "hidden_sizes": [512, 512]},
    "small_cnn_16_32": {"family": "small_cnn", "channels": [16, 32]},
    # Narrow versions of the families with concatenations, residual adds and LRN (folding check).
    "resnet8_narrow": {"family": "resnet20", "blocks_per_stage": 1, "stage_widths": [4, 8, 16]},
    "alexnet_narrow": {"family": "alexnet_small", "conv_channels": [8, 8], "fc_sizes": [32, 16]},
    # The follow-up literature's families, narrow: either side of the CPU rule on 1x8x8 digits, and on 3x32x32.
    "resnet18_w4": {"family": "resnet", "width": 4},
    "resnet18_w8": {"family": "resnet", "width": 8},
    "wrn_16_2_narrow": {"family": "wide_resnet", "depth": 16, "widen_factor": 2,
                        "stem_width": 4, "stage_widths": [4, 8, 16]},
    "vgg_8_16_32": {"family": "vgg", "config": [8, "M", 16, "M", 32, "M"]},
    "vgg11_d16": {"family": "vgg", "config": "11", "width_divisor": 16},
    "vit_p4_d16": {"family": "vit", "patch_size": 4, "dim": 16, "depth": 2, "heads": 2},
    "vit_p2_d16": {"family": "vit", "patch_size": 2, "dim": 16, "depth": 2, "heads": 2},
    "vit_p2_d32": {"family": "vit", "patch_size": 2, "dim": 32, "depth": 2, "heads": 2},
    "vit_p4_d32": {"family": "vit", "patch_size": 4, "dim": 32, "depth": 4, "heads": 4},
}



def reference_loop(architecture, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    """Seconds for one trial: one epoch through a DataLoader, then a train-accuracy pass."""
    model = build_model(architecture, seed=0, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    synchronize(device)
    started = time.perf_counter()
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=1024):
            correct += (model(xb.to(device)).argmax(1) == yb.to(device)).sum().item()
    synchronize(device)
    return time.perf_counter() - started


def engine_run(architecture, x: torch.Tensor, k: int, device: torch.device, strategy: str | None) -> tuple[float, str, float]:
    """(seconds, strategy used, peak bytes per trial) for K trials of one epoch each."""
    shared, trials = bench_trials(x, k, device)
    training = TrainingSpec(batch_size=BATCH, max_epochs=1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    started = time.perf_counter()
    _, used = train_trials(architecture, shared, trials, training, options=EngineOptions(strategy=strategy, max_trials_per_batch=128))
    synchronize(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) / k if device.type == "cuda" else float("nan")
    return seconds, used, peak


def paired_run(
    architecture, x: torch.Tensor, y: torch.Tensor, k: int, device: torch.device, strategy: str, engine_first: bool
) -> tuple[float, float, str, float]:
    """(reference samples/s, engine samples/s, strategy used, peak bytes per trial), the two timed back to back."""
    if engine_first:
        seconds, used, peak = engine_run(architecture, x, k, device, strategy)
        reference = len(x) / reference_loop(architecture, x, y, device)
    else:
        reference = len(x) / reference_loop(architecture, x, y, device)
        seconds, used, peak = engine_run(architecture, x, k, device, strategy)
    return reference, k * len(x) / seconds, used, peak


def engine_auto(architecture, x: torch.Tensor, k: int, device: torch.device) -> str:
    """What train_trials picks on an accelerator: the faster stacking strategy in a short probe."""
    shared, trials = bench_trials(x, k, device)
    return measure_strategy(architecture, shared, trials, TrainingSpec(batch_size=BATCH))[0]


def bench_trials(x: torch.Tensor, k: int, device: torch.device) -> tuple[SharedData, list[TrialInputs]]:
    shared = SharedData(x.to(device), x[:BATCH].to(device), torch.zeros(BATCH, dtype=torch.long, device=device))
    generator = torch.Generator().manual_seed(1)
    return shared, [TrialInputs(seed=i, y_train=torch.randint(0, 10, (len(x),), generator=generator).to(device)) for i in range(k)]


def _architectures(models: str, onnx_files: str, shape: tuple[int, ...]):
    """(name, spec) of each built-in model at `shape`, then of each ONNX file as imported."""
    for model_name in filter(None, models.split(",")):
        yield model_name, parse_architecture({**MODELS[model_name], "input_shape": list(shape), "num_classes": 10})
    for path in filter(None, onnx_files.split(",")):
        yield f"onnx:{Path(path).stem}", load_checkpoint(path).architecture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ks", default="1,8,32,128")
    parser.add_argument("--steps", type=int, default=20, help="SGD steps per trial (one epoch)")
    parser.add_argument("--models", default="mlp_3x512,small_cnn")
    parser.add_argument("--input-shape", default="3,32,32", help="C,H,W of the synthetic inputs")
    parser.add_argument("--onnx", default="", help="comma-separated ONNX files to measure too (their own input shape)")
    parser.add_argument("--repeats", type=int, default=3, help="paired reference/engine runs per row (at least 3)")
    parser.add_argument("--compile", action="store_true", help="also time grouped-compiled (torch.compile; its compile time is in the warm-up)")
    parser.add_argument("--record", action="store_true", help=f"append the results to {RESULTS}")
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats must be at least 3: a ratio from fewer pairs is noise on a shared machine")
    device = torch.device(args.device)
    ks = [int(k) for k in args.ks.split(",")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    lines: list[str] = []

    def emit(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    machine = f"device {device} ({name}); torch {torch.__version__}; batch {BATCH}; {args.steps} steps per trial; inputs {args.input_shape}"
    if device.type == "cpu":  # other processes on a shared machine move every number: say how busy it was
        machine += "; load average {:.1f} {:.1f} {:.1f} at the start".format(*os.getloadavg())
    print(machine)
    pairs = f"× reference, median of {args.repeats} pairs"
    emit(f"| model | K | strategy | samples/s (median) | {pairs} | min | TFLOP/s | peak MiB/trial |")
    emit("| --- | --- | --- | --- | --- | --- | --- | --- |")
    n = args.steps * BATCH
    shape = tuple(int(d) for d in args.input_shape.split(","))
    for model_name, architecture in _architectures(args.models, args.onnx, shape):
        model_shape = tuple(architecture.input_shape)
        flops_per_example = 6 * multiply_adds(build_model(architecture, device="meta"), model_shape)
        x = torch.randn(n, *model_shape)
        y = torch.randint(0, 10, (n,))
        reference_loop(architecture, x[: 2 * BATCH], y[: 2 * BATCH], device)  # warm-up
        references: list[float] = []
        for k in ks:
            on_cpu = device.type == "cpu"
            auto = choose_strategy(architecture, device, k) if on_cpu else engine_auto(architecture, x, k, device)
            compiled = ["grouped-compiled"] if args.compile and folds(architecture) else []
            for strategy in dict.fromkeys([auto, *stacking_candidates(architecture), *compiled, "sequential"]):
                engine_run(architecture, x[: 2 * BATCH], k, device, strategy)  # warm-up, at the same K (compiled code is shape-specific)
                rates, ratios = [], []
                for repeat in range(args.repeats):
                    engine_first = repeat % 2 == 1
                    reference, rate, used, peak = paired_run(architecture, x, y, k, device, strategy, engine_first)
                    references.append(reference)
                    rates.append(rate)
                    ratios.append(rate / reference)
                label = f"{used}{' (auto)' if strategy == auto else ''}"
                memory = "—" if peak != peak else f"{peak / 2**20:.0f}"
                rate = statistics.median(rates)
                emit(
                    f"| {model_name} | {k} | {label} | {rate:,.0f} | {statistics.median(ratios):.2f} "
                    f"| {min(ratios):.2f} "
                    f"| {rate * flops_per_example / 1e12:.3f} | {memory} |"
                )
        reference = statistics.median(references)
        tflops = reference * flops_per_example / 1e12
        label = f"reference loop ({len(references)} runs)"
        emit(f"| {model_name} | 1 | {label} | {reference:,.0f} | 1.00 | 1.00 | {tflops:.3f} | — |")
    if args.record:
        threads = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
        command = " ".join([*threads, shlex.join(["python", "bench/engine_throughput.py", *sys.argv[1:]])])
        header = f"### Recorded {datetime.date.today().isoformat()}: {machine}"
        section = "## Engine throughput, recorded runs (issue 3)"
        existing = RESULTS.read_text()
        with RESULTS.open("a") as results:
            results.write("\n".join([*([] if section in existing else ["", section]), "", header, "", f"`{command}`", "", *lines, ""]))


if __name__ == "__main__":
    main()
