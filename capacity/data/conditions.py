"""The randomization-test conditions of Zhang et al. 2017, section 2, as pure array functions.

Only the training data change between conditions; test labels are always the clean ones, so test
accuracy says what the model learnt about the true task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effcap.capacity.data.datasets import Dataset
from effcap.capacity.specs import Condition, ConditionKind


@dataclass(frozen=True)
class ConditionedData:
    """What one trial trains and evaluates on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # Share of train labels that differ from the true ones.
    labels_changed_fraction: float


def corrupt_labels(y: np.ndarray, num_classes: int, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Each label independently, with `probability`, becomes a uniform draw over all K classes.

    The draw may equal the true class, so about p(K-1)/K of labels change. Not a class permutation:
    a fixed relabelling is learnable and would not test memorisation. The new classes are drawn
    first, so the random labels (p = 1) of the first m examples are the first m of those of all n:
    the memorisation search's nested subsets keep their labels as they grow.
    """
    drawn = rng.integers(0, num_classes, size=len(y))
    replace = rng.random(len(y)) < probability
    return np.where(replace, drawn, y)


def shuffle_pixels(x_train: np.ndarray, x_test: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One permutation of the input coordinates, shared by every train and test example."""
    d = int(np.prod(x_train.shape[1:]))
    permutation = rng.permutation(d)

    def apply(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), d)[:, permutation].reshape(x.shape)

    return apply(x_train), apply(x_test)


def random_pixels(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An independent permutation of the input coordinates for every example."""
    flat = x.reshape(len(x), -1)
    permutations = np.argsort(rng.random(flat.shape), axis=1)
    return np.take_along_axis(flat, permutations, axis=1).reshape(x.shape)


def gaussian_inputs(x_train: np.ndarray, x_test: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Inputs replaced by N(mean, std^2) per coordinate, with the train split's moments."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)

    def draw(n: int) -> np.ndarray:
        return (mean + std * rng.standard_normal((n, *mean.shape))).astype(np.float32)

    return draw(len(x_train)), draw(len(x_test))


def apply_condition(condition: Condition, data: Dataset, rng: np.random.Generator) -> ConditionedData:
    x_train, x_test, y_train = data.x_train, data.x_test, data.y_train
    kind = condition.kind
    if kind is ConditionKind.CORRUPT_LABELS:
        y_train = corrupt_labels(y_train, data.num_classes, condition.corruption, rng)
    elif kind is ConditionKind.RANDOM_LABELS:
        y_train = corrupt_labels(y_train, data.num_classes, 1.0, rng)
    elif kind is ConditionKind.SHUFFLED_PIXELS:
        x_train, x_test = shuffle_pixels(x_train, x_test, rng)
    elif kind is ConditionKind.RANDOM_PIXELS:
        x_train, x_test = random_pixels(x_train, rng), random_pixels(x_test, rng)
    elif kind is ConditionKind.GAUSSIAN_INPUTS:
        x_train, x_test = gaussian_inputs(x_train, x_test, rng)
    changed = float(np.mean(y_train != data.y_train))
    return ConditionedData(x_train, y_train, x_test, data.y_test, changed)
