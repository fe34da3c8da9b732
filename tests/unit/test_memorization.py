"""Memorisation capacity on cases with known answers (Zhang et al. 2017, Theorem 1; Cover 1965)."""

import itertools
import math

import numpy as np
import pytest
import torch

from effcap.capacity.analyses.memorization import budget_steps, geometric_grid, plan_subset, run_memorization, search_largest_fitting, subset_training
from effcap.capacity.data.conditions import apply_condition
from effcap.capacity.data.datasets import Dataset, digits, train_subset
from effcap.capacity.models import build_model, count_parameters, parse_architecture
from effcap.capacity.specs import MemorizationSpec, TrainingSpec


def gaussian_dataset(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    return Dataset("gaussian", x, y, x[:10], y[:10], num_classes=k)


def theorem1_weights(x: np.ndarray, y: np.ndarray, k: int) -> dict[str, torch.Tensor]:
    """Zhang et al.'s construction: project on a direction a with distinct z_i = <a, x_i>; put the n
    ReLU thresholds b_j between consecutive z's; the n x n matrix max(z_i - b_j, 0) is lower
    triangular with a positive diagonal, so output weights solving it reproduce any targets."""
    n, d = x.shape
    a = np.random.default_rng(0).standard_normal(d)
    order = np.argsort(x @ a)
    z = (x @ a)[order]
    b = np.concatenate([[z[0] - 1.0], (z[:-1] + z[1:]) / 2])
    hidden = np.maximum(z[:, None] - b[None, :], 0.0)
    targets = np.eye(k)[y[order]]
    w = np.linalg.solve(hidden, targets)  # (n, k)
    return {
        "hidden.0.weight": torch.tensor(np.tile(a, (n, 1)), dtype=torch.float64),
        "hidden.0.bias": torch.tensor(-b, dtype=torch.float64),
        "head.weight": torch.tensor(w.T, dtype=torch.float64),
        "head.bias": torch.zeros(k, dtype=torch.float64),
    }


def test_theorem1_a_two_layer_relu_net_with_n_hidden_units_represents_any_labels():
    n, d, k = 60, 5, 10
    data = gaussian_dataset(n, d, k)
    spec = parse_architecture({"family": "mlp", "input_shape": [d], "hidden_sizes": [n], "num_classes": k})
    model = build_model(spec).double()
    model.load_state_dict(theorem1_weights(data.x_train.astype(np.float64), data.y_train, k))
    predictions = model(torch.from_numpy(data.x_train.astype(np.float64))).argmax(dim=1).numpy()
    assert (predictions == data.y_train).all()


def test_search_finds_that_a_wide_network_fits_every_size():
    data = gaussian_dataset(128, 8, 4)
    spec = parse_architecture({"family": "mlp", "input_shape": [8], "hidden_sizes": [512], "num_classes": 4})
    training = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, batch_size=32, max_epochs=400)
    result = run_memorization(spec, data, MemorizationSpec(min_subset_size=16, training=training), 0, torch.device("cpu"))
    assert [p.size for p in result.points] == [16, 32, 64, 128]
    assert result.reached_max_size and result.largest_fitted_size == 128
    assert result.capacity_bits == 128 * 2.0
    assert result.bits_per_parameter == 256 / count_parameters(build_model(spec))


def test_search_brackets_the_capacity_of_a_linear_classifier():
    """A linear classifier on d inputs always fits d + 1 points in general position (any labels),
    and random labels on n >> 2d points almost never (Cover 1965): m* lies between."""
    d = 8
    data = gaussian_dataset(256, d, 2, seed=1)
    linear = parse_architecture({"family": "mlp", "input_shape": [d], "hidden_sizes": [], "num_classes": 2})
    training = TrainingSpec(learning_rate=1.0, lr_decay_per_epoch=1.0, batch_size=8, max_epochs=300)
    result = run_memorization(linear, data, MemorizationSpec(min_subset_size=4, bisection_steps=6, training=training), 0, torch.device("cpu"))
    assert not result.reached_max_size
    assert d + 1 <= result.largest_fitted_size < 4 * d
    sizes = [p.size for p in result.points]
    fitted = {p.size: p.fitted for p in result.points}
    # The boundary is bracketed: the smallest failed size tried is larger than m*, and no size
    # at or below m* failed.
    assert all(fitted[m] for m in sizes if m <= result.largest_fitted_size)
    assert min(m for m in sizes if not fitted[m]) > result.largest_fitted_size


@pytest.mark.parametrize("start, stop, factor", [(4, 100, 2.0), (1, 37, 1.5), (64, 1297, 2.0), (10, 10, 2.0)])
def test_the_search_finds_every_capacity_a_monotone_fit_can_have(start, stop, factor):
    """Brute force over the true m*: with enough bisection steps the search lands on it exactly,
    probing only sizes on either side of it; with fewer it stays a lower bracket."""
    grid = geometric_grid(start, stop, factor)
    assert grid[0] == start and grid[-1] == stop and all(b > a for a, b in itertools.pairwise(grid))
    for capacity in range(stop + 2):
        for steps in (0, 2, 40):
            tried = []

            def fits(m, capacity=capacity, tried=tried):
                tried.append(m)
                return m <= capacity

            found, reached = search_largest_fitting(fits, grid, steps)
            assert reached == (capacity >= stop)
            assert found <= capacity and all((m <= capacity) == (m <= found) for m in tried)
            assert len(tried) == len(set(tried)) <= len(grid) + steps
            if steps == 40 or reached:
                assert found == min(capacity, stop)


def learning_rates(training: TrainingSpec, steps_per_epoch: int) -> list[float]:
    """The rate of every step when torch's ExponentialLR decays once per epoch, as train_trial does."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=training.learning_rate)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=training.lr_decay_per_epoch)
    rates = []
    for _ in range(training.max_epochs):
        rates += [optimizer.param_groups[0]["lr"]] * steps_per_epoch
        optimizer.step()  # no gradient: moves nothing, but the scheduler expects a step first
        schedule.step()
    return rates


def test_every_subset_size_gets_the_whole_splits_steps_and_learning_rate_schedule():
    training = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=0.5, batch_size=128, max_epochs=10)
    assert budget_steps(training, 1297) == 110  # 11 steps per epoch of 1297 examples
    whole = learning_rates(training, 11)
    for size in (2, 64, 128, 129, 500, 1297):
        subset = subset_training(training, size, 1297)
        per_epoch = -(-size // 128)
        rates = learning_rates(subset, per_epoch)
        assert 110 <= len(rates) < 110 + per_epoch
        # Step by step, the rate is the whole split's up to one epoch of decay of the longer epoch...
        slack = math.log(2) * max(per_epoch, 11) / 11
        assert all(abs(math.log(a / b)) <= slack + 1e-9 for a, b in zip(rates, whole))
        # ...and for subsets within one batch it is 0.5^(k/11) exactly: the whole split's, smoothed.
        if per_epoch == 1:
            assert rates[:110] == pytest.approx([0.1 * 0.5 ** (k / 11) for k in range(110)])
    # A 2-example subset of a long budget restates it in more epochs than a client may ask for directly.
    assert subset_training(TrainingSpec(max_epochs=300), 2, 50_000).max_epochs == 117_300


def test_larger_subsets_only_add_examples_and_keep_the_labels_drawn_for_the_smaller():
    data = digits()
    plan = plan_subset(MemorizationSpec(seeds=2), 64, audit_seed=3, train_examples=len(data.x_train))
    assert plan_subset(MemorizationSpec(seeds=2), 256, audit_seed=3, train_examples=len(data.x_train)).trials == plan.trials
    small, large = train_subset(data, 64, plan.subset_seed), train_subset(data, 256, plan.subset_seed)
    assert (large.x_train[:64] == small.x_train).all()
    labels = []
    for trial in plan.trials:
        labels_small = apply_condition(trial.condition, small, np.random.default_rng(trial.seed)).y_train
        labels_large = apply_condition(trial.condition, large, np.random.default_rng(trial.seed)).y_train
        assert (labels_large[:64] == labels_small).all()
        labels.append(labels_small)
    assert not (labels[0] == labels[1]).all()  # each seed its own labels


def test_memorisation_defaults_to_a_constant_learning_rate_even_in_a_partial_training_spec():
    assert MemorizationSpec().training.lr_decay_per_epoch == 1.0
    assert MemorizationSpec.model_validate({"training": {"learning_rate": 0.1}}).training.lr_decay_per_epoch == 1.0
    assert MemorizationSpec.model_validate({"training": {"lr_decay_per_epoch": 0.9}}).training.lr_decay_per_epoch == 0.9
    with pytest.raises(ValueError, match="max_subset_size"):
        MemorizationSpec(min_subset_size=500, max_subset_size=100)
