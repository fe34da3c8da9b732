"""Compression-bound arithmetic against direct numeric solutions and the worked example of ANCHORS.md."""

import math

import pytest
from scipy import optimize

from effcap.capacity.measures.compression_bounds import (
    catoni_bound,
    entropy_bits,
    hoeffding_bound,
    kl_bernoulli,
    kl_bound,
    kl_inverse_upper,
    log2_binomial,
)


@pytest.mark.parametrize("q, budget", [(0.0, 0.1), (0.05, 0.02), (0.35, 1.55), (0.5, 0.3), (0.9, 0.01)])
def test_kl_inversion_agrees_with_a_root_finder(q, budget):
    expected = optimize.brentq(lambda p: kl_bernoulli(q, p) - budget, q + 1e-15, 1 - 1e-15, xtol=1e-14)
    assert kl_inverse_upper(q, budget) == pytest.approx(expected, abs=1e-9)


def test_worked_example_of_zhou_et_al():
    """MobileNet on ImageNet: 2,867,200 bits, train error 0.35, n = 1,281,167 (ANCHORS.md)."""
    bits, error, n, delta = 2_867_200, 0.35, 1_281_167, 0.05
    assert kl_bound(error, bits, n, delta) == pytest.approx(0.965, abs=0.002)
    assert catoni_bound(error, bits, n, delta) == pytest.approx(0.965, abs=0.002)
    assert hoeffding_bound(error, bits, n, delta) == pytest.approx(1.23, abs=0.005)


def test_bounds_order_and_limits():
    assert kl_bound(0.1, 0, 10**9, 0.05) == pytest.approx(0.1, abs=1e-3)  # no bits, huge n: the train error
    assert kl_bound(0.1, 1000, 5000, 0.05) < hoeffding_bound(0.1, 1000, 5000, 0.05)
    assert catoni_bound(0.0, 100, 10_000, 0.05) < 0.02


def test_code_length_helpers():
    assert log2_binomial(10, 3) == pytest.approx(math.log2(120))
    assert log2_binomial(10**7, 10**5) == pytest.approx(math.log2(math.comb(10**7, 10**5)), rel=1e-9)
    assert entropy_bits([5, 5]) == pytest.approx(10.0) and entropy_bits([7]) == 0
