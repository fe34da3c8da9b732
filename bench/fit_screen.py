"""Replay the fit check's screen (capacity/engine/fit_check.py) on full-pass learning curves.

    python bench/fit_screen.py [--runs all|quick] [--seeds 2]

Trains each configuration on scikit-learn's digits one trial at a time (the arithmetic of
engine/trainer.py: SGD momentum 0.9, batch 128), recording after every epoch both the running accuracy
(each batch's predictions just before its step) and a full pass over the train split, until the full
pass reaches 1.0 or 400 epochs. Then, for fit thresholds 1.0, 0.99, 0.95, 0.9, 0.8 and 0.5, it replays
FitScreen: which epochs it would have evaluated, and whether the first of them at or above the threshold
is the first epoch of all at or above it (a miss would change steps to fit). Prints the misses, the
share of epochs evaluated, and the slack each run needed (threshold − running − calibrated gap at the
fitting epoch; the screen's FIT_SCREEN_SLACK must exceed every one of them).
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import torch
from torch.nn import functional as F

from effcap.capacity.data.conditions import apply_condition
from effcap.capacity.data.datasets import digits, train_subset
from effcap.capacity.engine.fit_check import FIT_SCREEN_SLACK, WARM_UP_EPOCHS, FitScreen, on_curve_schedule
from effcap.capacity.engine.trainer import evaluate
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.specs import Condition, ConditionKind

MAX_EPOCHS = 400
THRESHOLDS = (1.0, 0.99, 0.95, 0.9, 0.8, 0.5)
ARCHITECTURES = {
    "mlp_1x128": {"family": "mlp", "hidden_sizes": [128]},
    "cnn_bn_16_32": {"family": "small_cnn", "channels": [16, 32], "batch_norm": True},
    "wrn_10_dropout": {
        "family": "wide_resnet",
        "depth": 10,
        "widen_factor": 1,
        "stem_width": 4,
        "stage_widths": [4, 8, 16],
        "dropout": 0.3,
    },
    "resnet8_narrow": {"family": "resnet20", "blocks_per_stage": 1, "stage_widths": [4, 8, 16]},
    "vit_p4_d16": {"family": "vit", "patch_size": 4, "dim": 16, "depth": 2, "heads": 2},
    "alexnet_narrow": {"family": "alexnet_small", "conv_channels": [8, 8], "fc_sizes": [32, 16]},
}
CONDITIONS = {
    "true": Condition(kind=ConditionKind.TRUE_LABELS),
    "corrupt(0.5)": Condition(kind=ConditionKind.CORRUPT_LABELS, corruption=0.5),
    "random": Condition(kind=ConditionKind.RANDOM_LABELS),
    "gaussian": Condition(kind=ConditionKind.GAUSSIAN_INPUTS),
}
# (architecture, condition, train subset size (0: whole split), learning rate, decay per epoch)
QUICK = [
    ("mlp_1x128", "true", 0, 0.1, 1.0),
    ("mlp_1x128", "random", 300, 0.1, 1.0),
    ("mlp_1x128", "random", 64, 0.1, 1.0),
    ("cnn_bn_16_32", "random", 64, 0.1, 1.0),
    ("wrn_10_dropout", "random", 300, 0.1, 1.0),
]
ALL = QUICK + [
    ("mlp_1x128", "random", 0, 0.1, 1.0),
    ("mlp_1x128", "corrupt(0.5)", 0, 0.1, 1.0),
    ("mlp_1x128", "gaussian", 0, 0.1, 1.0),
    ("mlp_1x128", "true", 0, 0.01, 0.95),
    ("mlp_1x128", "random", 128, 0.1, 1.0),
    ("cnn_bn_16_32", "true", 0, 0.1, 1.0),
    ("wrn_10_dropout", "true", 0, 0.1, 1.0),
    ("resnet8_narrow", "random", 300, 0.1, 1.0),
    ("resnet8_narrow", "random", 128, 0.1, 1.0),
    ("vit_p4_d16", "random", 300, 0.1, 1.0),
    ("alexnet_narrow", "true", 0, 0.1, 1.0),
    ("alexnet_narrow", "random", 300, 0.1, 1.0),
]


def curves(
    architecture: str, condition: str, size: int, lr: float, decay: float, seed: int
) -> tuple[list[float], list[float]]:
    """(running accuracy, full-pass accuracy) after every epoch, until the full pass reaches 1.0."""
    data = digits() if not size else train_subset(digits(), size, 7)
    conditioned = apply_condition(CONDITIONS[condition], data, np.random.default_rng(seed))
    x, y = torch.from_numpy(conditioned.x_train), torch.from_numpy(conditioned.y_train)
    model = build_model(
        parse_architecture({**ARCHITECTURES[architecture], "input_shape": [1, 8, 8], "num_classes": 10}), seed=seed
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay)
    order_rng = torch.Generator().manual_seed(seed)
    running, full = [], []
    while len(full) < MAX_EPOCHS and (not full or full[-1] < 1.0):
        model.train()
        order, correct = torch.randperm(len(x), generator=order_rng), 0
        for start in range(0, len(x), 128):
            batch = order[start : start + 128]
            logits = model(x[batch])
            loss = F.cross_entropy(logits, y[batch])
            correct += int((logits.argmax(dim=1) == y[batch]).sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        running.append(correct / len(x))
        full.append(evaluate(model, x, y)[1])
    return running, full


def replay(
    running: list[float], full: list[float], threshold: float
) -> tuple[int | None, int | None, int, float | None]:
    """(first epoch at the threshold, first the screen finds, epochs evaluated, slack needed at the fit)."""
    screen = FitScreen(threshold, MAX_EPOCHS)
    truth = next((e for e, a in enumerate(full, 1) if a >= threshold), None)
    found, evaluated = None, 0
    for epoch, (r, a) in enumerate(zip(running, full), 1):
        if screen.full_pass_due(epoch, r):
            evaluated += 1
            if a >= threshold:
                found = epoch
                break
            screen.observe(epoch, r, a)
    needed = None
    if truth is not None and truth > WARM_UP_EPOCHS and not on_curve_schedule(truth, MAX_EPOCHS):
        needed = threshold - running[truth - 1] - screen.largest_gap
    return truth, found, evaluated, needed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", choices=("quick", "all"), default="quick")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    totals: dict[float, list[int]] = collections.defaultdict(lambda: [0, 0])
    misses, needed = [], []
    print("| run | seed | epochs to 1.0 | running accuracy at that epoch | largest gap (full − running) |")
    print("| --- | --- | --- | --- | --- |")
    for run in ALL if args.runs == "all" else QUICK:
        for seed in range(args.seeds):
            running, full = curves(*run, seed)
            gaps = [a - r for r, a in zip(running[WARM_UP_EPOCHS:], full[WARM_UP_EPOCHS:])]
            fitted = len(full) if full[-1] >= 1.0 else "not fitted"
            print(
                f"| {' '.join(map(str, run))} | {seed} | {fitted} | {running[-1]:.3f} | {max(gaps, default=0.0):.3f} |",
                flush=True,
            )
            for threshold in THRESHOLDS:
                truth, found, evaluated, need = replay(running, full, threshold)
                totals[threshold][0] += evaluated
                totals[threshold][1] += found or len(full)
                if found != truth:
                    misses.append((run, seed, threshold, truth, found))
                if need is not None:
                    needed.append(need)
    print(
        f"\nFIT_SCREEN_SLACK {FIT_SCREEN_SLACK}; largest slack needed {max(needed, default=float('nan')):.3f}; "
        f"misses: {misses or 'none'}"
    )
    for threshold, (evaluated, epochs) in sorted(totals.items(), reverse=True):
        print(f"threshold {threshold}: {evaluated} of {epochs} epochs evaluated ({evaluated / epochs:.2f})")


if __name__ == "__main__":
    main()
