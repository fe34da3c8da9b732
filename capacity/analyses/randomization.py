"""The randomization test (Zhang et al. 2017): retrain the architecture under transformed data.

For each condition and seed: apply the condition to the data, initialise the architecture (fresh or
from the checkpoint), train to the fit threshold or the budget, and record accuracies and time to
fit. Aggregates over seeds give the slowdown over true labels and the generalisation gap.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.analyses.trial_batch import TrialPlan, TrialResult
from effcap.capacity.analyses.trial_executor import TrialExecutor
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.engine.trainer import EpochRecord, steps_per_epoch
from effcap.capacity.models import ArchitectureSpec
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import Condition, ConditionKind, RandomizationSpec


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
    # Set instead of slowdown_vs_true when some trials of this condition ran out of budget (every
    # true-label trial fitted): their steps run stand in for steps to fit, so the slowdown is at least this.
    slowdown_lower_bound: float | None = None


@dataclass(frozen=True)
class RandomizationResult:
    spec: RandomizationSpec
    steps_per_epoch: int
    conditions: list[ConditionSummary]
    # How the trials were trained ("vmap", "grouped", "grouped-compiled" or "sequential"; label and pixel
    # conditions trained differently are joined by "+"); the numbers agree to float tolerance.
    engine_strategy: str

    def condition(self, kind: ConditionKind) -> ConditionSummary | None:
        return next((c for c in self.conditions if c.condition.kind is kind), None)


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
    progress: AnalysisProgress | None = None,
    engine: EngineOptions = EngineOptions(),
    executor: TrialExecutor | None = None,
) -> RandomizationResult:
    """Train every (condition, seed) trial (as trial batches on `executor`, this process by default); summarise."""
    if spec.init == "checkpoint" and checkpoint_state is None:
        raise ValueError("init=checkpoint needs the checkpoint's weights")
    plans = plan_trials(spec, audit_seed)
    tracker = _Tracker(plans, spec.training.max_epochs, progress or AnalysisProgress())
    init_state = checkpoint_state if spec.init == "checkpoint" else None
    results, strategy = (executor or TrialExecutor()).run(
        architecture, dataset, plans, spec.training, device, init_state, engine, tracker.epoch, tracker.finished
    )
    return summarise(spec, steps_per_epoch(len(dataset.x_train), spec.training.batch_size), results, strategy)


class _Tracker:
    """Turns engine callbacks into analysis progress: each trial's share of its epoch budget, 1 once it stopped.

    A trial that fits leaves the epoch callbacks' records while its batch trains on, and its result is reported only
    when the batch ends; counting it as done when it leaves keeps the share from going backwards (it went 2% → 1%
    in the demo while the true-label trials fitted) and the trial count from reading 0 until the batch ends.
    """

    def __init__(self, plans: list[TrialPlan], max_epochs: int, progress: AnalysisProgress) -> None:
        self._plans = plans
        self._max_epochs = max_epochs
        self._progress = progress
        self._shares: dict[int, float] = {}

    def epoch(self, epoch: int, records: dict[int, EpochRecord]) -> None:
        for index in self._shares.keys() - records.keys():
            self._shares[index] = 1.0  # left the batch: it fitted or stopped
        for index in records:
            self._shares[index] = max(self._shares.get(index, 0.0), min(1.0, epoch / self._max_epochs))
        labels = sorted({self._plans[i].condition.label for i in records})
        best = max(r.train_accuracy for r in records.values())
        # Epochs the fit check's screen did not evaluate in full carry the running accuracy (fit_check.py).
        full = all(r.full_pass for r in records.values())
        kind = "train accuracy" if full else "train accuracy (running where not evaluated)"
        trials = f"{', '.join(labels)} ({len(records)} trials)"
        self._report(f"randomization: {trials}, epoch {epoch}, best {kind} {best:.3f}")

    def finished(self, index: int, result: TrialResult) -> None:
        self._shares[index] = 1.0
        plan = self._plans[index]
        self._progress.trial_finished(result)
        self._report(f"randomization: {plan.condition.label} seed {plan.seed_index} finished")

    def _report(self, stage: str) -> None:
        total = len(self._plans)
        stopped = sum(1 for share in self._shares.values() if share >= 1.0)
        self._progress.update(stage, stopped, total, sum(self._shares.values()) / total)


def summarise(spec: RandomizationSpec, epoch_steps: int, results: list[TrialResult], strategy: str) -> RandomizationResult:
    by_condition = {c.label: [r for r in results if r.plan.condition == c] for c in spec.conditions}
    true_trials = next((trials for c, trials in zip(spec.conditions, by_condition.values()) if c.kind is ConditionKind.TRUE_LABELS), None)
    summaries = [_summarise_condition(c, by_condition[c.label], true_trials) for c in spec.conditions]
    return RandomizationResult(spec, epoch_steps, summaries, strategy)


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
        slowdown_lower_bound=_slowdown_lower_bound(trials, true_trials),
    )


def _slowdown(trials: list[TrialResult], true_trials: list[TrialResult] | None) -> float | None:
    """Mean steps to fit over that of true labels; None unless every trial of both fitted."""
    if not true_trials or not all(t.outcome.fitted for t in trials + true_trials):
        return None
    baseline = statistics.fmean(t.outcome.steps_to_fit for t in true_trials)
    return statistics.fmean(t.outcome.steps_to_fit for t in trials) / baseline


def _slowdown_lower_bound(trials: list[TrialResult], true_trials: list[TrialResult] | None) -> float | None:
    """When some of `trials` ran out of budget but every true-label trial fitted: the slowdown with
    steps run in place of the unknown steps to fit (a censored mean, so a lower bound); else None."""
    if not true_trials or not all(t.outcome.fitted for t in true_trials) or all(t.outcome.fitted for t in trials):
        return None
    baseline = statistics.fmean(t.outcome.steps_to_fit for t in true_trials)
    return statistics.fmean(t.outcome.steps_to_fit if t.outcome.fitted else t.outcome.steps_run for t in trials) / baseline
