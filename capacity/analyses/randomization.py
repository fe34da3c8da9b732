"""The randomization test (Zhang et al. 2017): retrain the architecture under transformed data.

For each condition and seed: apply the condition to the data, initialise the architecture (fresh or
from the checkpoint), train to the fit threshold or the budget, and record accuracies and time to
fit. Aggregates over seeds give the slowdown over true labels and the generalisation gap.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from effcap.capacity.data.conditions import apply_condition
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.trainer import DeviceData, EpochRecord, TrialOutcome, steps_per_epoch, train_trial
from effcap.capacity.models import ArchitectureSpec, build_model
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import Condition, ConditionKind, RandomizationSpec


@dataclass(frozen=True)
class TrialPlan:
    condition: Condition
    seed_index: int
    seed: int


@dataclass(frozen=True)
class TrialResult:
    plan: TrialPlan
    outcome: TrialOutcome
    labels_changed_fraction: float


@dataclass(frozen=True)
class Statistic:
    mean: float
    std: float
    count: int


@dataclass(frozen=True)
class ConditionSummary:
    condition: Condition
    trials: list[TrialResult]
    train_accuracy: Statistic
    test_accuracy: Statistic
    steps_to_fit: Statistic
    seconds_to_fit: Statistic
    fitted_fraction: float
    slowdown_vs_true: float | None
    generalization_gap: float


@dataclass(frozen=True)
class RandomizationResult:
    spec: RandomizationSpec
    steps_per_epoch: int
    conditions: list[ConditionSummary]

    def condition(self, kind: ConditionKind) -> ConditionSummary | None:
        return next((c for c in self.conditions if c.condition.kind is kind), None)


class RandomizationProgress:
    """Hooks a caller overrides to follow the test; the defaults do nothing."""

    def trial_started(self, plan: TrialPlan, index: int, total: int) -> None: ...

    def epoch_finished(self, plan: TrialPlan, record: EpochRecord, max_epochs: int) -> None: ...

    def trial_finished(self, result: TrialResult, index: int, total: int) -> None: ...


def plan_trials(spec: RandomizationSpec, audit_seed: int) -> list[TrialPlan]:
    return [
        TrialPlan(condition, i, derive_seed(audit_seed, "randomization", condition.label, i))
        for condition in spec.conditions
        for i in range(spec.seeds_per_condition)
    ]


def run_randomization_test(
    architecture: ArchitectureSpec,
    dataset: Dataset,
    spec: RandomizationSpec,
    audit_seed: int,
    device: torch.device,
    checkpoint_state: dict[str, torch.Tensor] | None = None,
    progress: RandomizationProgress | None = None,
) -> RandomizationResult:
    if spec.init == "checkpoint" and checkpoint_state is None:
        raise ValueError("init=checkpoint needs the checkpoint's weights")
    progress = progress or RandomizationProgress()
    plans = plan_trials(spec, audit_seed)
    results: list[TrialResult] = []
    for index, plan in enumerate(plans):
        progress.trial_started(plan, index, len(plans))
        result = run_trial(architecture, dataset, spec, plan, device, checkpoint_state, progress)
        results.append(result)
        progress.trial_finished(result, index, len(plans))
    return summarise(spec, steps_per_epoch(len(dataset.x_train), spec.training.batch_size), results)


def run_trial(
    architecture: ArchitectureSpec,
    dataset: Dataset,
    spec: RandomizationSpec,
    plan: TrialPlan,
    device: torch.device,
    checkpoint_state: dict[str, torch.Tensor] | None,
    progress: RandomizationProgress,
) -> TrialResult:
    conditioned = apply_condition(plan.condition, dataset, np.random.default_rng(plan.seed))
    data = DeviceData(
        torch.from_numpy(conditioned.x_train).to(device),
        torch.from_numpy(conditioned.y_train).to(device),
        torch.from_numpy(conditioned.x_test).to(device),
        torch.from_numpy(conditioned.y_test).to(device),
    )
    model = build_model(architecture, seed=plan.seed, device=device)
    if spec.init == "checkpoint":
        model.load_state_dict(checkpoint_state)
    outcome = train_trial(
        model, data, spec.training, plan.seed, on_epoch=lambda record: progress.epoch_finished(plan, record, spec.training.max_epochs)
    )
    return TrialResult(plan, outcome, conditioned.labels_changed_fraction)


def summarise(spec: RandomizationSpec, epoch_steps: int, results: list[TrialResult]) -> RandomizationResult:
    by_condition = {c.label: [r for r in results if r.plan.condition == c] for c in spec.conditions}
    true_trials = next((trials for c, trials in zip(spec.conditions, by_condition.values()) if c.kind is ConditionKind.TRUE_LABELS), None)
    summaries = [_summarise_condition(c, by_condition[c.label], true_trials) for c in spec.conditions]
    return RandomizationResult(spec, epoch_steps, summaries)


def statistic(values: list[float]) -> Statistic:
    """Mean and sample standard deviation (0 for fewer than two values)."""
    if not values:
        return Statistic(0.0, 0.0, 0)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Statistic(statistics.fmean(values), std, len(values))


def _summarise_condition(condition: Condition, trials: list[TrialResult], true_trials: list[TrialResult] | None) -> ConditionSummary:
    fitted = [t for t in trials if t.outcome.fitted]
    train = statistic([t.outcome.train_accuracy for t in trials])
    test = statistic([t.outcome.test_accuracy for t in trials])
    steps = statistic([float(t.outcome.steps_to_fit) for t in fitted])
    return ConditionSummary(
        condition=condition,
        trials=trials,
        train_accuracy=train,
        test_accuracy=test,
        steps_to_fit=steps,
        seconds_to_fit=statistic([t.outcome.seconds_to_fit for t in fitted]),
        fitted_fraction=len(fitted) / len(trials),
        slowdown_vs_true=_slowdown(trials, true_trials),
        generalization_gap=train.mean - test.mean,
    )


def _slowdown(trials: list[TrialResult], true_trials: list[TrialResult] | None) -> float | None:
    """Mean steps to fit over that of true labels; None unless every trial of both fitted."""
    if not true_trials or not all(t.outcome.fitted for t in trials + true_trials):
        return None
    baseline = statistics.fmean(t.outcome.steps_to_fit for t in true_trials)
    return statistics.fmean(t.outcome.steps_to_fit for t in trials) / baseline
