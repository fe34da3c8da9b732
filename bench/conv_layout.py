"""NCHW against channels-last: one SGD step of each conv family, and of K folded trials.

    python bench/conv_layout.py [--device cuda] [--repeats 3]

Why the engine runs convolutions channels-last on every device (trainer.channels_last, the folded
network in batched.py): this times both layouts, alternating, in the same process. "one trial": a
module trained as the sequential strategy trains it (torch.optim.SGD, batch 128, CIFAR-shaped
inputs); "folded": K=32 trials folded into one grouped network (engine.batched.time_steps) on
digits-shaped inputs, where the CPU rule folds.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from effcap.capacity.engine import batched
from effcap.capacity.engine.batched import SharedData, TrialInputs, time_steps
from effcap.capacity.engine.device import synchronize
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.specs import TrainingSpec

ONE_TRIAL = {
    "small_cnn (64-128-128)": {"family": "small_cnn", "channels": [64, 128, 128], "input_shape": [3, 32, 32]},
    "resnet20": {"family": "resnet20", "input_shape": [3, 32, 32]},
    "alexnet_small": {"family": "alexnet_small", "input_shape": [3, 32, 32]},
    "inception_small": {"family": "inception_small", "input_shape": [3, 32, 32]},
    "lenet5": {"family": "lenet5", "input_shape": [1, 28, 28]},
}
FOLDED = {
    "small_cnn_16_32": {"family": "small_cnn", "channels": [16, 32]},
    "resnet8_narrow": {"family": "resnet20", "blocks_per_stage": 1, "stage_widths": [4, 8, 16]},
    "alexnet_narrow": {"family": "alexnet_small", "conv_channels": [8, 8], "fc_sizes": [32, 16]},
}


def one_trial_seconds(spec: dict, device: torch.device, layout_last: bool, steps: int) -> float:
    architecture = parse_architecture({**spec, "num_classes": 10})
    model = build_model(architecture, seed=0, device=device)
    if layout_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, *spec["input_shape"], device=device), torch.randint(0, 10, (128,), device=device)
    for step in range(steps + 1):
        if step == 1:
            synchronize(device)
            started = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    synchronize(device)
    return (time.perf_counter() - started) / steps


def folded_seconds(spec: dict, device: torch.device, layout_last: bool, steps: int) -> float:
    architecture = parse_architecture({**spec, "input_shape": [1, 8, 8], "num_classes": 10})
    x = torch.rand(1024, 1, 8, 8, device=device)
    shared = SharedData(x, x[:128], torch.zeros(128, dtype=torch.long, device=device))
    trials = [TrialInputs(seed=i, y_train=torch.randint(0, 10, (1024,), device=device)) for i in range(32)]
    forced = batched.grouped_forward
    batched.grouped_forward = lambda arch, channels_last=True: forced(arch, channels_last=layout_last)
    try:
        return time_steps(architecture, shared, trials, TrainingSpec(), steps, stacking="grouped") / steps
    finally:
        batched.grouped_forward = forced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}; torch {torch.__version__}; {torch.get_num_threads()} threads; best of {args.repeats}, {args.steps} steps each")
    print("| network | trials | NCHW ms/step | channels-last ms/step | channels-last speed-up |")
    print("| --- | --- | --- | --- | --- |")
    for table, measure, trials in ((ONE_TRIAL, one_trial_seconds, "1"), (FOLDED, folded_seconds, "32 folded")):
        for name, spec in table.items():
            best = {False: float("inf"), True: float("inf")}
            for _ in range(args.repeats):
                for layout_last in (False, True):  # alternating, so drift in the machine's load hits both
                    best[layout_last] = min(best[layout_last], measure(spec, device, layout_last, args.steps))
            print(f"| {name} | {trials} | {1e3 * best[False]:.1f} | {1e3 * best[True]:.1f} | {best[False] / best[True]:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
