"""Memorisation capacity: the largest random-labelled subset the architecture fits within a budget.

Sizes m grow geometrically from `min_subset_size` until a size does not fit (every seed must reach
the fit threshold), then bisection narrows the boundary. m* is the largest size that fitted; it
stores m*·log2 K bits of random labels, (m*·log2 K)/P bits per parameter. m* depends on the budget
and optimiser, so it is a lower estimate of the architecture's capacity, reported with both.

Every size gets the same optimisation budget: the SGD steps of `training.max_epochs` epochs over the
whole train split (rounded up to whole epochs of the subset, since fitting is checked per epoch), with
the learning rate decaying by the whole split's factor per whole-split epoch's worth of steps
(`subset_training`). An epoch of a subset is fewer steps, so counting the budget in the subset's own
epochs would starve small subsets (a subset no larger than a batch would get one step per epoch) and
make m* an artefact.
Subsets and their labels are nested: size m trains on the first m examples of one permutation of
the train split, with the first m labels of each seed's one random draw, so a larger size only adds
examples. Each size is one trial batch (trial_batch.py), so any executor can run it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.analyses.randomization import Statistic, statistic
from effcap.capacity.analyses.trial_batch import TrainSubset, TrialPlan
from effcap.capacity.analyses.trial_executor import TrialExecutor
from effcap.capacity.data.datasets import Dataset, train_subset
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.engine.trainer import TrialOutcome, steps_per_epoch
from effcap.capacity.models import ArchitectureSpec, build_model, count_parameters
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import Condition, ConditionKind, MemorizationSpec, TrainingSpec


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
    # SGD steps every size was given at least (training.max_epochs epochs of the whole train split).
    budget_steps: int
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
    executor: TrialExecutor | None = None,
) -> MemorizationResult:
    progress = progress or AnalysisProgress()
    n = len(dataset.x_train)
    grid = size_grid(spec, n)
    planned = len(grid) + spec.bisection_steps
    points: dict[int, SubsetFit] = {}
    strategy = "sequential"

    def fits(size: int) -> bool:
        nonlocal strategy
        progress.update(f"memorization: random labels on {size} examples", len(points), planned, len(points) / planned)
        points[size], strategy = _fit_subset(
            architecture, dataset, spec, size, audit_seed, device, engine, executor or TrialExecutor()
        )
        return points[size].fitted

    largest_fitted, reached_max = search_largest_fitting(fits, grid, spec.bisection_steps)
    progress.update("memorization: done", len(points), len(points), 1.0)
    return MemorizationResult(
        spec=spec,
        points=[points[m] for m in sorted(points)],
        largest_fitted_size=largest_fitted,
        reached_max_size=reached_max,
        num_classes=dataset.num_classes,
        parameter_count=count_parameters(build_model(architecture, device="meta")),
        budget_steps=budget_steps(spec.training, n),
        engine_strategy=strategy,
    )


def search_largest_fitting(fits: Callable[[int], bool], grid: list[int], bisection_steps: int) -> tuple[int, bool]:
    """(m*, whether the last grid size fitted): walk the ascending grid to the first size that does
    not fit, then bisect between it and the last that did (0 when none did) for at most
    `bisection_steps` probes. Assumes fitting is monotone in the size: below m* everything fits."""
    lo, hi = 0, None
    for size in grid:
        if not fits(size):
            hi = size
            break
        lo = size
    if hi is None:
        return lo, True
    for _ in range(bisection_steps):
        mid = (lo + hi) // 2
        if mid <= lo:
            break
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo, False


def size_grid(spec: MemorizationSpec, train_examples: int) -> list[int]:
    """The subset sizes the search walks before bisecting (at most `spec.bisection_steps` more follow)."""
    largest = min(spec.max_subset_size or train_examples, train_examples)
    return geometric_grid(min(spec.min_subset_size, largest), largest, spec.growth_factor)


def geometric_grid(start: int, stop: int, factor: float) -> list[int]:
    """start, start·factor, ... (each at least one more than the last), ending exactly at stop."""
    sizes = [start]
    while sizes[-1] < stop:
        sizes.append(min(stop, max(sizes[-1] + 1, int(sizes[-1] * factor))))
    return sizes


def budget_steps(training: TrainingSpec, train_examples: int) -> int:
    """The steps of `training.max_epochs` epochs over the whole train split: every size's budget."""
    return training.max_epochs * steps_per_epoch(train_examples, training.batch_size)


def subset_training(training: TrainingSpec, size: int, train_examples: int) -> TrainingSpec:
    """`training` restated in epochs of a `size`-example subset: enough of them for budget_steps steps
    (fewer than one subset epoch more), and the per-epoch decay d^(s/S) for s steps per subset epoch
    and S per whole-split epoch. After k steps the rate has decayed by d^(k/S) up to one epoch's
    rounding, as on the whole split; for subsets no larger than a batch (s = 1) it is d^(k/S) exactly
    at every step, the whole split's schedule smoothed."""
    full, subset = steps_per_epoch(train_examples, training.batch_size), steps_per_epoch(size, training.batch_size)
    restated = {"max_epochs": -(-budget_steps(training, train_examples) // subset), "lr_decay_per_epoch": training.lr_decay_per_epoch ** (subset / full)}
    return TrainingSpec.model_validate({**training.model_dump(), **restated})


@dataclass(frozen=True)
class SubsetPlan:
    """One subset size as a trial batch: which examples (`subset_seed`), one random-label trial per
    seed, and the training restated for the subset (subset_training)."""

    size: int
    subset_seed: int
    trials: list[TrialPlan]
    training: TrainingSpec


RANDOM_LABELS = Condition(kind=ConditionKind.RANDOM_LABELS)


def plan_subset(spec: MemorizationSpec, size: int, audit_seed: int, train_examples: int) -> SubsetPlan:
    """What `_fit_subset` trains for `size` out of `train_examples`; a trial batch with this subset,
    trials and training reproduces it. The seeds do not depend on the size: that nests the subsets
    and their labels."""
    trials = [TrialPlan(RANDOM_LABELS, i, derive_seed(audit_seed, "memorization", i)) for i in range(spec.seeds)]
    return SubsetPlan(size, derive_seed(audit_seed, "memorization-subset"), trials, subset_training(spec.training, size, train_examples))


def _fit_subset(
    architecture: ArchitectureSpec,
    dataset: Dataset,
    spec: MemorizationSpec,
    size: int,
    audit_seed: int,
    device: torch.device,
    engine: EngineOptions,
    executor: TrialExecutor,
) -> tuple[SubsetFit, str]:
    """Train `spec.seeds` fresh networks on `size` examples with random labels (one trial batch)."""
    plan = plan_subset(spec, size, audit_seed, len(dataset.x_train))
    subset = train_subset(dataset, size, plan.subset_seed)
    cut = TrainSubset(size=size, seed=plan.subset_seed)
    results, strategy = executor.run(
        architecture, subset, plan.trials, plan.training, device, engine=engine, train_subset=cut
    )
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
