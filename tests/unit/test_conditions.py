"""Each randomization-test condition checked on small arrays (Zhang et al. 2017, section 2)."""

import numpy as np
import pytest

from effcap.capacity.data.conditions import apply_condition, corrupt_labels, gaussian_inputs, random_pixels, shuffle_pixels
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.specs import Condition, ConditionKind


def small_dataset(n=400, k=10):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, k, size=n)
    return Dataset("t", x, y, x[:50].copy(), y[:50].copy(), num_classes=k)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8, 1.0])
def test_corrupt_labels_changes_about_p_times_k_minus_one_over_k(p):
    k, n = 10, 200_000
    y = np.random.default_rng(0).integers(0, k, size=n)
    corrupted = corrupt_labels(y, k, p, np.random.default_rng(1))
    changed = np.mean(corrupted != y)
    assert changed == pytest.approx(p * (k - 1) / k, abs=0.005)
    assert corrupted.min() >= 0 and corrupted.max() < k


def test_random_labels_are_not_a_class_permutation():
    """A fixed relabelling would be learnable; random labels must map one class to many."""
    y = np.repeat(np.arange(10), 100)
    corrupted = corrupt_labels(y, 10, 1.0, np.random.default_rng(0))
    for cls in range(10):
        assert len(np.unique(corrupted[y == cls])) > 5


def test_shuffled_pixels_use_one_permutation_for_train_and_test():
    x_train = np.arange(3 * 16, dtype=np.float32).reshape(3, 1, 4, 4)
    x_test = x_train[:2] + 100
    a, b = shuffle_pixels(x_train, x_test, np.random.default_rng(0))
    assert a.shape == x_train.shape
    perm = np.argsort(x_train[0].ravel())[np.argsort(np.argsort(a[0].ravel()))]
    # The same coordinate permutation maps every train and test example.
    for original, shuffled in [(x_train[i], a[i]) for i in range(3)] + [(x_test[i], b[i]) for i in range(2)]:
        np.testing.assert_array_equal(original.ravel()[perm], shuffled.ravel())
    assert not np.array_equal(a, x_train)


def test_random_pixels_permute_each_example_differently():
    x = np.tile(np.arange(64, dtype=np.float32), (20, 1)).reshape(20, 1, 8, 8)
    shuffled = random_pixels(x, np.random.default_rng(0))
    flat = shuffled.reshape(20, -1)
    assert all(sorted(row) == list(range(64)) for row in flat.tolist())  # a permutation of each example
    assert len({tuple(row) for row in flat.tolist()}) == 20  # and a different one for each


def test_gaussian_inputs_match_per_coordinate_moments():
    rng = np.random.default_rng(0)
    x_train = (rng.normal(size=(20_000, 3)) * [1.0, 2.0, 0.5] + [0.0, 5.0, -1.0]).astype(np.float32)
    g_train, g_test = gaussian_inputs(x_train, x_train[:10], np.random.default_rng(1))
    np.testing.assert_allclose(g_train.mean(axis=0), x_train.mean(axis=0), atol=0.05)
    np.testing.assert_allclose(g_train.std(axis=0), x_train.std(axis=0), rtol=0.03)
    assert g_test.shape == (10, 3)
    assert not np.allclose(g_train, x_train)


@pytest.mark.parametrize("kind", list(ConditionKind))
def test_test_labels_stay_clean_under_every_condition(kind):
    data = small_dataset()
    condition = Condition(kind=kind, corruption=0.5 if kind is ConditionKind.CORRUPT_LABELS else 0.0)
    out = apply_condition(condition, data, np.random.default_rng(0))
    np.testing.assert_array_equal(out.y_test, data.y_test)
    label_kinds = {ConditionKind.CORRUPT_LABELS, ConditionKind.RANDOM_LABELS}
    assert (out.labels_changed_fraction > 0) == (kind in label_kinds)
    if kind not in label_kinds:
        np.testing.assert_array_equal(out.y_train, data.y_train)
