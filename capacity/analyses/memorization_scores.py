"""Which training examples the architecture memorises: per-example scores from subset-trained models.

Train `models` fresh networks of the audited architecture, network k on its own random subset S_k of
`subset_fraction` of the train split (the audit's training spec, its fit threshold and budget), then
count, for every train example, how often the networks that trained on it and those that did not
predict its given label (measures/example_scores.py has the estimators and their sources). The
networks are one trial batch (trial_batch.py; one subset per trial, `TrialPlan.subset`), so they
stack on a device like any other trials, and any executor can run them. Subsets, initialisations and
data orders derive from the audit seed: the same seed gives the same scores.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.analyses.randomization import Statistic, statistic
from effcap.capacity.analyses.trial_batch import TrainSubset, TrialPlan, TrialResult
from effcap.capacity.analyses.trial_executor import TrialExecutor
from effcap.capacity.data.datasets import Dataset, subset_rows
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.engine.trainer import EpochRecord
from effcap.capacity.measures.example_scores import (
    ExampleScores,
    InfluenceEstimates,
    example_scores,
    influence_estimates,
)
from effcap.capacity.models import ArchitectureSpec
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import Condition, ConditionKind, MemorizationScoresSpec

TRUE_LABELS = Condition(kind=ConditionKind.TRUE_LABELS)
# Bins of the mem(i) histogram: mem lies in [-1, 1]; 0.1 wide, so 0.25 and 0.5 fall inside known bins.
HISTOGRAM_EDGES = np.round(np.linspace(-1.0, 1.0, 21), 10)


@dataclass(frozen=True)
class MemorizationScoresResult:
    spec: MemorizationScoresSpec
    subset_size: int
    train_labels: np.ndarray
    test_labels: np.ndarray
    scores: ExampleScores
    influence: InfluenceEstimates
    # Of the `models` networks: accuracy on their own subset (the fit), on the test split, and how many fitted.
    subset_accuracy: Statistic
    test_accuracy: Statistic
    fitted_fraction: float
    engine_strategy: str

    def share_above(self, threshold: float) -> float:
        """Share of the train examples (those with a defined score) whose mem exceeds `threshold`."""
        defined = self.scores.memorization[np.isfinite(self.scores.memorization)]
        return float((defined > threshold).mean()) if len(defined) else 0.0

    def top_memorized(self, k: int) -> np.ndarray:
        """Rows of the k most memorised train examples, descending (ties: lower row first)."""
        mem = np.where(np.isfinite(self.scores.memorization), self.scores.memorization, -np.inf)
        return np.lexsort((np.arange(len(mem)), -mem))[:k]


def subset_size(train_examples: int, fraction: float) -> int:
    """round(r·n), kept in [1, n-1] so every example can be both in and out of a subset."""
    return int(min(max(round(fraction * train_examples), 1), max(train_examples - 1, 1)))


def plan_models(spec: MemorizationScoresSpec, audit_seed: int, train_examples: int) -> list[TrialPlan]:
    """One trial per network: its initialisation and data-order seed, and its subset's seed."""
    size = subset_size(train_examples, spec.subset_fraction)
    return [
        TrialPlan(
            TRUE_LABELS,
            k,
            derive_seed(audit_seed, "memorization_scores", k),
            TrainSubset(size=size, seed=derive_seed(audit_seed, "memorization_scores-subset", k)),
        )
        for k in range(spec.models)
    ]


def membership_matrix(plans: list[TrialPlan], train_examples: int) -> np.ndarray:
    """(m, n) bool: network k trained on example i."""
    membership = np.zeros((len(plans), train_examples), dtype=bool)
    for k, plan in enumerate(plans):
        membership[k, subset_rows(train_examples, plan.subset.size, plan.subset.seed)] = True
    return membership


def run_memorization_scores(
    architecture: ArchitectureSpec,
    dataset: Dataset,
    spec: MemorizationScoresSpec,
    audit_seed: int,
    device: torch.device,
    progress: AnalysisProgress | None = None,
    engine: EngineOptions = EngineOptions(),
    executor: TrialExecutor | None = None,
) -> MemorizationScoresResult:
    """Train the networks (as trial batches, on `executor`: this process by default) and score every train
    example and train→test pair."""
    n = len(dataset.x_train)
    if n < 2:
        raise ValueError("memorization_scores needs at least two train examples")
    plans = plan_models(spec, audit_seed, n)
    tracker = _Tracker(len(plans), spec.training.max_epochs, progress or AnalysisProgress())
    results, strategy = (executor or TrialExecutor()).run(
        architecture,
        dataset,
        plans,
        spec.training,
        device,
        engine=engine,
        on_epoch=tracker.epoch,
        on_trial_finished=tracker.finished,
        record_predictions=True,
    )
    return score(spec, plans, results, dataset, strategy)


def score(
    spec: MemorizationScoresSpec, plans: list[TrialPlan], results: list[TrialResult], dataset: Dataset, strategy: str
) -> MemorizationScoresResult:
    """The scores from finished trials (their predicted labels on both splits)."""
    membership = membership_matrix(plans, len(dataset.x_train))
    train_predictions = np.array([r.outcome.train_predictions for r in results], dtype=np.int64)
    test_predictions = np.array([r.outcome.test_predictions for r in results], dtype=np.int64).reshape(
        len(results), len(dataset.y_test)
    )
    outcomes = [r.outcome for r in results]
    return MemorizationScoresResult(
        spec=spec,
        subset_size=plans[0].subset.size,
        train_labels=dataset.y_train,
        test_labels=dataset.y_test,
        scores=example_scores(membership, train_predictions, dataset.y_train, dataset.num_classes),
        influence=influence_estimates(
            membership, test_predictions == dataset.y_test[None, :], spec.top_influence_pairs
        ),
        subset_accuracy=statistic([o.train_accuracy for o in outcomes]),
        test_accuracy=statistic([o.test_accuracy for o in outcomes]),
        fitted_fraction=sum(o.fitted for o in outcomes) / len(outcomes),
        engine_strategy=strategy,
    )


def scores_npz(result: MemorizationScoresResult) -> bytes:
    """Every per-example score as an .npz archive (plain arrays, no pickles): the report's download."""
    s, infl = result.scores, result.influence
    arrays = {
        "label": result.train_labels,
        "memorization": s.memorization,
        "memorization_se": s.memorization_se,
        "consistency": s.consistency,
        "consistency_se": s.consistency_se,
        "accuracy_in": s.accuracy_in,
        "models_in": s.models_in,
        "models_out": s.models_out,
        "held_out_prediction": s.held_out_prediction,
        "held_out_agreement": s.held_out_agreement,
        "test_label": result.test_labels,
        "test_top_train_index": infl.top_train_for_test,
        "test_top_influence": infl.top_influence_for_test,
        "pair_train_index": infl.train_index,
        "pair_test_index": infl.test_index,
        "pair_influence": infl.influence,
        "pair_influence_se": infl.influence_se,
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


class _Tracker:
    """Engine callbacks as analysis progress: finished networks and the furthest epoch."""

    def __init__(self, models: int, max_epochs: int, progress: AnalysisProgress) -> None:
        self._models, self._max_epochs, self._progress, self._done = models, max_epochs, progress, 0

    def epoch(self, epoch: int, records: dict[int, EpochRecord]) -> None:
        stage = f"memorization_scores: {len(records)} networks on their subsets, epoch {epoch}"
        self._progress.update(
            stage,
            self._done,
            self._models,
            min(1.0, (self._done + len(records) * epoch / self._max_epochs) / self._models),
        )

    def finished(self, index: int, result: TrialResult) -> None:
        self._done += 1
        self._progress.update(
            f"memorization_scores: network {index} finished", self._done, self._models, self._done / self._models
        )
