"""Memorisation capacity on cases with known answers (Zhang et al. 2017, Theorem 1; Cover 1965)."""

import numpy as np
import torch

from effcap.capacity.analyses.memorization import run_memorization
from effcap.capacity.data.datasets import Dataset
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
