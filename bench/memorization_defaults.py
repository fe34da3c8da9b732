"""Memorisation capacity with the default spec on digits: what an audit reports before anyone tunes it.

    python bench/memorization_defaults.py

MLPs of growing width on scikit-learn's digits (1,297 train examples, 10 classes), the default
MemorizationSpec (budget: 100 epochs of the whole split = 1,100 SGD steps per size, learning rate
0.01, momentum 0.9, constant), audit seed 0, on the CPU. Prints m*, bits per parameter, the sizes
tried and the wall time.
"""

from __future__ import annotations

import time

import torch

from effcap.capacity.analyses.memorization import run_memorization
from effcap.capacity.data.datasets import digits
from effcap.capacity.models import parse_architecture
from effcap.capacity.specs import MemorizationSpec

HIDDEN = ([16], [128], [512, 512])


def main() -> None:
    data = digits()
    print("| MLP hidden sizes | parameters | m* | bits/parameter | sizes tried (fitted) | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for hidden in HIDDEN:
        architecture = parse_architecture({"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": hidden, "num_classes": 10})
        started = time.perf_counter()
        result = run_memorization(architecture, data, MemorizationSpec(), audit_seed=0, device=torch.device("cpu"))
        tried = ", ".join(f"{p.size}{'✓' if p.fitted else '✗'}" for p in result.points)
        bound = "≥ " if result.reached_max_size else ""
        print(
            f"| {hidden} | {result.parameter_count:,} | {bound}{result.largest_fitted_size} | {result.bits_per_parameter:.3f} "
            f"| {tried} | {time.perf_counter() - started:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
