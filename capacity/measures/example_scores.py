"""Per-example memorisation, consistency and influence, estimated from models trained on random subsets.

m models h_1..h_m; model k was trained on a subset S_k of the train split (Feldman & Zhang, "What Neural
Networks Memorize and Why", NeurIPS 2020, the subsampled estimator of their eq. 1; Jiang et al.,
"Characterizing Structural Regularities of Labeled Data", ICML 2021, the C-score at one ratio r):

    mem(i)     = P[h(x_i) = y_i | i ∈ S] − P[h(x_i) = y_i | i ∉ S]
    C(i)       = P[h(x_i) = y_i | i ∉ S]
    infl(i, j) = P[h(x'_j) = y'_j | i ∈ S] − P[h(x'_j) = y'_j | i ∉ S]        (test example j)

Each probability is the share of correct models among those whose subset holds (or lacks) i. Standard
errors are binomial, sqrt(p(1-p)/N), with p smoothed to (k+1)/(N+2) so that an example every model gets
right still shows the uncertainty of N draws (the plain estimate says 0 whatever N is); a difference of
two shares over disjoint sets of models adds their variances. A probability over no models is NaN.
Pure numpy: the analysis gathers predictions, these functions only count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ExampleScores:
    """Per train example, every array of length n."""

    memorization: np.ndarray
    memorization_se: np.ndarray
    # The C-score at the subset ratio: accuracy of the models that did not train on the example.
    consistency: np.ndarray
    consistency_se: np.ndarray
    # Accuracy of the models that trained on the example.
    accuracy_in: np.ndarray
    models_in: np.ndarray
    models_out: np.ndarray
    # The label most held-out models predict (-1 where no model held it out), and their share predicting it.
    held_out_prediction: np.ndarray
    held_out_agreement: np.ndarray


@dataclass(frozen=True)
class InfluenceEstimates:
    """The largest infl(i, j) pairs, and each test example's most influential train example."""

    # The `top` largest pairs, descending: train row, test row, infl and its standard error.
    train_index: np.ndarray
    test_index: np.ndarray
    influence: np.ndarray
    influence_se: np.ndarray
    # Per test example j: argmax_i infl(i, j) (first on ties) and that influence.
    top_train_for_test: np.ndarray
    top_influence_for_test: np.ndarray


def binomial_se(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """sqrt(p(1-p)/N) with p = (k+1)/(N+2) (Laplace's rule of succession); NaN where N = 0."""
    trials = np.asarray(trials, dtype=np.float64)
    smoothed = (np.asarray(successes, dtype=np.float64) + 1) / (trials + 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(trials > 0, np.sqrt(smoothed * (1 - smoothed) / trials), np.nan)


def _share(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(trials > 0, successes / np.maximum(trials, 1), np.nan)


def example_scores(
    membership: np.ndarray, predictions: np.ndarray, labels: np.ndarray, num_classes: int
) -> ExampleScores:
    """Scores of every train example from `membership` (m, n) bool (model k trained on example i),
    `predictions` (m, n) each model's predicted class for every train example, and the given `labels` (n,)."""
    membership = np.asarray(membership, dtype=bool)
    correct = np.asarray(predictions) == np.asarray(labels)[None, :]
    models_in = membership.sum(axis=0)
    models_out = len(membership) - models_in
    correct_in = (correct & membership).sum(axis=0)
    correct_out = (correct & ~membership).sum(axis=0)
    accuracy_in, accuracy_out = _share(correct_in, models_in), _share(correct_out, models_out)
    se_in, se_out = binomial_se(correct_in, models_in), binomial_se(correct_out, models_out)
    votes = np.zeros((membership.shape[1], num_classes), dtype=np.int64)
    model_rows, example_columns = np.nonzero(~membership)
    np.add.at(votes, (example_columns, np.asarray(predictions)[model_rows, example_columns]), 1)
    held_out_prediction = np.where(models_out > 0, votes.argmax(axis=1), -1)
    return ExampleScores(
        memorization=accuracy_in - accuracy_out,
        memorization_se=np.sqrt(se_in**2 + se_out**2),
        consistency=accuracy_out,
        consistency_se=se_out,
        accuracy_in=accuracy_in,
        models_in=models_in,
        models_out=models_out,
        held_out_prediction=held_out_prediction,
        held_out_agreement=_share(votes.max(axis=1), models_out),
    )


def influence_estimates(
    membership: np.ndarray, test_correct: np.ndarray, top: int, chunk_rows: int = 2048
) -> InfluenceEstimates:
    """infl(i, j) for every train i and test j from `membership` (m, n) and `test_correct` (m, t), keeping
    the `top` largest pairs and each test example's largest: the n×t matrix itself is never held whole
    (50k × 10k for CIFAR-10 is 2 GB), only `chunk_rows` train rows of it at a time."""
    membership = np.asarray(membership, dtype=np.float64)
    correct = np.asarray(test_correct, dtype=np.float64)
    m, n = membership.shape
    t = correct.shape[1]
    correct_total = correct.sum(axis=0)
    best_pairs = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0))
    top_train = np.zeros(t, dtype=np.int64)
    top_value = np.full(t, -np.inf)
    for start in range(0, n, chunk_rows):
        block = membership[:, start : start + chunk_rows].T  # (c, m)
        models_in = block.sum(axis=1, keepdims=True)
        models_out = m - models_in
        correct_in = block @ correct  # (c, t)
        correct_out = correct_total[None, :] - correct_in
        influence = _share(correct_in, models_in) - _share(correct_out, models_out)
        ranked = np.where(np.isnan(influence), -np.inf, influence)
        column_best = ranked.argmax(axis=0)
        better = ranked[column_best, np.arange(t)] > top_value
        top_train[better], top_value[better] = column_best[better] + start, ranked[column_best, np.arange(t)][better]
        if top > 0:
            flat = ranked.ravel()
            keep = np.argpartition(-flat, min(top, flat.size) - 1)[:top] if flat.size > top else np.arange(flat.size)
            rows, columns = np.divmod(keep, t)
            se = np.sqrt(
                binomial_se(correct_in[rows, columns], models_in[rows, 0]) ** 2
                + binomial_se(correct_out[rows, columns], models_out[rows, 0]) ** 2
            )
            best_pairs = _merge_top(best_pairs, (rows + start, columns, flat[keep], se), top)
    return InfluenceEstimates(*best_pairs, top_train, np.where(np.isfinite(top_value), top_value, np.nan))


def _merge_top(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], top: int) -> tuple[np.ndarray, ...]:
    """The `top` largest of two candidate lists, descending by influence, ties by (train, test) row."""
    train, test, value, se = (np.concatenate(pair) for pair in zip(a, b))
    finite = np.isfinite(value)
    train, test, value, se = train[finite], test[finite], value[finite], se[finite]
    order = np.lexsort((test, train, -value))[:top]
    return train[order], test[order], value[order], se[order]


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of the finite `values` in the bins of `edges` (the last bin closed)."""
    finite = values[np.isfinite(values)]
    return np.histogram(finite, bins=edges)[0]
