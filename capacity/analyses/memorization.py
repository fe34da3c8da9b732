"""Memorisation capacity: the largest random-labelled subset the architecture fits within a budget.

Sizes m grow geometrically from `min_subset_size` until a size does not fit (every seed must reach
the fit threshold), then bisection narrows the boundary. m* is the largest size that fitted; it
stores m*·log2 K bits of random labels, (m*·log2 K)/P bits per parameter. m* depends on the budget
and optimiser, so it is a lower estimate of the architecture's capacity, reported with both.
Each size is one trial batch (trial_batch.py): a subset of the train split and one random-label
trial per seed, so any executor can run it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.analyses.randomization import Statistic, statistic
from effcap.capacity.analyses.trial_batch import TrialPlan, run_trials
from effcap.capacity.data.datasets import Dataset, train_subset
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.engine.trainer import TrialOutcome
from effcap.capacity.models import ArchitectureSpec, build_model, count_parameters
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import Condition, ConditionKind, MemorizationSpec


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


@dataclass(frozen=True)
class SubsetPlan:
    """The trials of one subset size: which examples (`subset_seed`), and one random-label trial per seed."""

    size: int
    subset_seed: int
    trials: list[TrialPlan]


RANDOM_LABELS = Condition(kind=ConditionKind.RANDOM_LABELS)


def plan_subset(spec: MemorizationSpec, size: int, audit_seed: int) -> SubsetPlan:
    """What `_fit_subset` trains for `size`; a trial batch with this subset and these trials reproduces it."""
    trials = [TrialPlan(RANDOM_LABELS, i, derive_seed(audit_seed, "memorization", size, i)) for i in range(spec.seeds)]
    return SubsetPlan(size, derive_seed(audit_seed, "memorization-subset", size), trials)


def _fit_subset(
    architecture: ArchitectureSpec,
    dataset: Dataset,
    spec: MemorizationSpec,
    size: int,
    audit_seed: int,
    device: torch.device,
    engine: EngineOptions,
) -> tuple[SubsetFit, str]:
    """Train `spec.seeds` fresh networks on a random subset of `size` examples with random labels (one trial batch)."""
    plan = plan_subset(spec, size, audit_seed)
    results, strategy = run_trials(architecture, train_subset(dataset, size, plan.subset_seed), plan.trials, spec.training, device, engine=engine)
    return subset_fit(size, [r.outcome for r in results]), strategy


def subset_fit(size: int, outcomes: list[TrialOutcome]) -> SubsetFit:
    """One point of the capacity curve from its trials' outcomes."""
    fitted = [o for o in outcomes if o.fitted]
    return SubsetFit(
        size=size,
        fitted_fraction=len(fitted) / len(outcomes),
        train_accuracy=statistic([o.train_accuracy for o in outcomes]),
        steps_to_fit=statistic([float(o.steps_to_fit) for o in fitted]),
    )
