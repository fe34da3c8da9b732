"""The `weights` analysis against matrices whose spectra are known, and its wiring into a checkpoint's layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from effcap.capacity.analyses.weights import layer_matrices, run_weights
from effcap.capacity.measures.weight_spectra import (
    eigenvalues_of_gram,
    fit_power_law,
    ks_distance,
    power_law_mle,
    stable_rank,
    summarize_spectrum,
)
from effcap.capacity.models import build_model, parse_architecture


def _matrix_with_singular_values(singular_values: np.ndarray, rows: int, seed: int = 0) -> np.ndarray:
    """U diag(s) Vᵀ with random orthonormal U (rows × n) and V (n × n): a matrix whose spectrum we chose."""
    rng = np.random.default_rng(seed)
    n = len(singular_values)
    u, _ = np.linalg.qr(rng.standard_normal((rows, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return u @ np.diag(singular_values) @ v.T


def _pareto_quantiles(alpha: float, n: int, xmin: float = 1.0) -> np.ndarray:
    """The n mid-quantiles of a continuous power law p(λ) ∝ λ^−α on [xmin, ∞): a sample with no sampling noise."""
    q = (np.arange(n) + 0.5) / n
    return xmin * (1 - q) ** (-1 / (alpha - 1))


def test_mle_is_the_closed_form() -> None:
    # Two points, xmin 1 and e: Σ ln(λ / xmin) = 1, so α̂ = 1 + 2 / 1.
    assert power_law_mle(np.array([1.0, math.e]), 1.0) == pytest.approx(3.0)


@pytest.mark.parametrize("alpha", [2.0, 3.0, 4.5])
def test_alpha_of_a_matrix_whose_eigenvalues_follow_a_power_law(alpha: float) -> None:
    eigenvalues = _pareto_quantiles(alpha, 400, xmin=0.5)
    w = _matrix_with_singular_values(np.sqrt(eigenvalues), rows=600)
    fit = fit_power_law(eigenvalues_of_gram([w]))
    assert fit is not None
    assert fit.alpha == pytest.approx(alpha, abs=0.05)
    # Exact quantiles are as close to the law as 400 points can be: D of order 1/(2n).
    assert fit.ks_distance < 0.02


def test_chosen_xmin_has_the_least_ks_distance_of_every_candidate() -> None:
    rng = np.random.default_rng(3)
    # A bulk (uniform) below a power-law tail: the fit must find the tail's start by brute force.
    values = np.sort(np.concatenate([rng.uniform(0.01, 1.0, 300), _pareto_quantiles(2.5, 200, xmin=1.0)]))
    fit = fit_power_law(values)
    distances = [
        ks_distance(values[i:], values[i], power_law_mle(values[i:], values[i])) for i in range(len(values) - 9)
    ]
    assert fit.ks_distance == pytest.approx(min(distances))
    assert fit.xmin == pytest.approx(values[int(np.argmin(distances))])
    assert fit.alpha == pytest.approx(2.5, abs=0.3)
    assert fit.xmin > 0.5  # the tail, not the bulk


def test_stable_rank_spectral_and_frobenius_norms_of_a_known_matrix() -> None:
    w = _matrix_with_singular_values(np.array([2.0, 2.0, 1.0]), rows=5)
    summary = summarize_spectrum(eigenvalues_of_gram([w]))
    assert summary.spectral_norm == pytest.approx(2.0)
    assert summary.frobenius_norm == pytest.approx(3.0)
    assert summary.stable_rank == pytest.approx(9.0 / 4.0)
    assert stable_rank(np.array([4.0, 4.0, 4.0])) == pytest.approx(3.0)
    assert summary.fit is None  # three eigenvalues: no tail to fit


def test_histogram_counts_every_positive_eigenvalue_once() -> None:
    eigenvalues = _pareto_quantiles(3.0, 200)
    summary = summarize_spectrum(eigenvalues)
    assert sum(summary.counts) == 200
    assert len(summary.bin_edges) == len(summary.counts) + 1
    assert summary.bin_edges[0] == pytest.approx(eigenvalues.min()) and summary.bin_edges[-1] == pytest.approx(
        eigenvalues.max()
    )


def test_a_convolution_pools_one_matrix_per_kernel_position() -> None:
    conv = nn.Conv2d(3, 4, kernel_size=(2, 3))
    matrices = layer_matrices(conv)
    assert len(matrices) == 6 and all(m.shape == (4, 3) for m in matrices)
    expected = np.sort(
        np.concatenate(
            [
                np.linalg.svd(conv.weight.detach().double()[:, :, i, j].numpy(), compute_uv=False) ** 2
                for i in range(2)
                for j in range(3)
            ]
        )
    )
    np.testing.assert_allclose(eigenvalues_of_gram([m.numpy() for m in matrices]), expected, rtol=1e-12)


def test_every_linear_layer_of_a_checkpoint_is_analysed_without_data() -> None:
    spec = parse_architecture({"family": "mlp", "input_shape": [64], "num_classes": 10, "hidden_sizes": [128, 32]})
    state = build_model(spec, seed=0).state_dict()
    result = run_weights(spec, state)
    linear = [name for name, module in build_model(spec, seed=0).named_modules() if isinstance(module, nn.Linear)]
    assert [layer.name for layer in result.layers] == linear
    for layer in result.layers:
        weight = state[f"{layer.name}.weight"].double()
        assert layer.spectrum.spectral_norm == pytest.approx(float(torch.linalg.matrix_norm(weight, ord=2)), rel=1e-9)
        assert layer.matrix_shape == tuple(weight.shape)
    assert result.layers[0].spectrum.fit is not None  # 64 eigenvalues
    assert result.layers[-1].spectrum.fit is not None  # 10 eigenvalues: just enough
