"""Datasets with a known answer for the memorisation scores: flipped labels and planted duplicates.

The estimators' ground truth (DESIGN.md §4.4): a flipped label can only be predicted by a network that
trained on it, so flipped examples must rank at the top of mem(i); a test example whose only support is
a copy in the train split must get its largest influence from that copy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from effcap.capacity.data.datasets import Dataset


@dataclass(frozen=True)
class PlantedLabelNoise:
    dataset: Dataset
    # Train rows whose label was changed, and their labels before.
    flipped: np.ndarray
    original_labels: np.ndarray


@dataclass(frozen=True)
class PlantedDuplicates:
    dataset: Dataset
    # test_rows[k]'s copy is train row train_rows[k].
    test_rows: np.ndarray
    train_rows: np.ndarray


def flip_labels(dataset: Dataset, fraction: float, seed: int) -> PlantedLabelNoise:
    """Change the train labels of round(fraction·n) examples (drawn by `seed`) to another class, uniformly."""
    rng = np.random.default_rng(seed)
    n, k = len(dataset.y_train), dataset.num_classes
    flipped = np.sort(rng.choice(n, round(fraction * n), replace=False))
    labels = dataset.y_train.copy()
    labels[flipped] = (labels[flipped] + rng.integers(1, k, len(flipped))) % k
    return PlantedLabelNoise(replace(dataset, y_train=labels), flipped, dataset.y_train[flipped])


def plant_duplicates(dataset: Dataset, count: int, seed: int) -> PlantedDuplicates:
    """Copy `count` test examples into the train split, each copy and its test original given one new
    (wrong) class: the original is then right only for a network that learnt it from its copy. (A
    duplicate of a typical example keeps its label and influences nothing: every network gets it right.)"""
    rng = np.random.default_rng(seed)
    n, k = len(dataset.y_train), dataset.num_classes
    test_rows = np.sort(rng.choice(len(dataset.y_test), count, replace=False))
    new_labels = ((dataset.y_test[test_rows] + rng.integers(1, k, count)) % k).astype(dataset.y_test.dtype)
    y_test = dataset.y_test.copy()
    y_test[test_rows] = new_labels
    planted = replace(
        dataset,
        x_train=np.concatenate([dataset.x_train, dataset.x_test[test_rows]]),
        y_train=np.concatenate([dataset.y_train, new_labels]),
        y_test=y_test,
    )
    return PlantedDuplicates(planted, test_rows, np.arange(n, n + count))


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of `scores` ranking the rows in `positives` (bool mask) first: the
    Mann-Whitney probability that a random positive outscores a random negative, ties counting half."""
    from scipy.stats import rankdata

    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    ranks = rankdata(scores)
    p, q = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - p * (p + 1) / 2) / (p * q))
