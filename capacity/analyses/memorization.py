"""Memorisation capacity: the largest random-labelled subset the architecture fits within a budget.

Sizes m grow geometrically from `min_subset_size` until a size does not fit (every seed must reach
the fit threshold), then bisection narrows the boundary. m* is the largest size that fitted; it
stores m*·log2 K bits of random labels, (m*·log2 K)/P bits per parameter. m* depends on the budget
and optimiser, so it is a lower estimate of the architecture's capacity, reported with both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.analyses.randomization import Statistic, statistic
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.strategy import EngineOptions, train_trials
from effcap.capacity.models import ArchitectureSpec, build_model, count_parameters
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import MemorizationSpec


@dataclass(frozen=True)
class SubsetFit:
    size: int
    fitted_fraction: float
    train_accuracy: Statistic
    steps_to_fit: Statistic

    @property
    def fitted(self) -> bool:
        return self.fitted_fraction == 1.0


@dataclass(frozen=True)
class MemorizationResult:
    spec: MemorizationSpec
    # Every size tried, ascending.
    points: list[SubsetFit]
    largest_fitted_size: int
    # True when the largest size tried (the whole train split, or max_subset_size) fitted: m* is
    # then only a lower bound set by the data, not by the architecture.
    reached_max_size: bool
    num_classes: int
    parameter_count: int
    engine_strategy: str

    @property
    def capacity_bits(self) -> float:
        return self.largest_fitted_size * math.log2(self.num_classes)

    @property
    def bits_per_parameter(self) -> float:
        return self.capacity_bits / self.parameter_count


def run_memorization(
    architecture: ArchitectureSpec,
    dataset: Dataset,
    spec: MemorizationSpec,
    audit_seed: int,
    device: torch.device,
    progress: AnalysisProgress | None = None,
    engine: EngineOptions = EngineOptions(),
) -> MemorizationResult:
    progress = progress or AnalysisProgress()
    n = len(dataset.x_train)
    largest = min(spec.max_subset_size or n, n)
    grid = _geometric_grid(min(spec.min_subset_size, largest), largest, spec.growth_factor)
    planned = len(grid) + spec.bisection_steps
    points: dict[int, SubsetFit] = {}
    strategy = "sequential"

    def fits(size: int) -> bool:
        nonlocal strategy
        progress.update(f"memorization: random labels on {size} examples", len(points), planned, len(points) / planned)
        points[size], strategy = _fit_subset(architecture, dataset, spec, size, audit_seed, device, engine)
        return points[size].fitted

    lo, hi = 0, None
    for size in grid:
        if not fits(size):
            hi = size
            break
        lo = size
    for _ in range(spec.bisection_steps if hi is not None else 0):
        mid = (lo + hi) // 2
        if mid <= lo:
            break
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    progress.update("memorization: done", len(points), len(points), 1.0)
    return MemorizationResult(
        spec=spec,
        points=[points[m] for m in sorted(points)],
        largest_fitted_size=lo,
        reached_max_size=hi is None,
        num_classes=dataset.num_classes,
        parameter_count=count_parameters(build_model(architecture, device="meta")),
        engine_strategy=strategy,
    )


def _geometric_grid(start: int, stop: int, factor: float) -> list[int]:
    sizes = [start]
    while sizes[-1] < stop:
        sizes.append(min(stop, max(sizes[-1] + 1, int(sizes[-1] * factor))))
    return sizes


def _fit_subset(
    architecture: ArchitectureSpec,
    dataset: Dataset,
    spec: MemorizationSpec,
    size: int,
    audit_seed: int,
    device: torch.device,
    engine: EngineOptions,
) -> tuple[SubsetFit, str]:
    """Train `spec.seeds` fresh networks on a random subset of `size` examples with random labels."""
    subset = np.random.default_rng(derive_seed(audit_seed, "memorization-subset", size)).choice(len(dataset.x_train), size, replace=False)
    shared = SharedData(*(torch.from_numpy(a).to(device) for a in (dataset.x_train[subset], dataset.x_test, dataset.y_test)))
    trials = []
    for i in range(spec.seeds):
        seed = derive_seed(audit_seed, "memorization", size, i)
        labels = np.random.default_rng(seed).integers(0, dataset.num_classes, size=size)
        trials.append(TrialInputs(seed, torch.from_numpy(labels).to(device)))
    outcomes, strategy = train_trials(architecture, shared, trials, spec.training, options=engine)
    fitted = [o for o in outcomes if o.fitted]
    return (
        SubsetFit(
            size=size,
            fitted_fraction=len(fitted) / len(outcomes),
            train_accuracy=statistic([o.train_accuracy for o in outcomes]),
            steps_to_fit=statistic([float(o.steps_to_fit) for o in fitted]),
        ),
        strategy,
    )
