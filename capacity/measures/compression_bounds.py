"""Occam (compression) bounds: a model described in |c| bits cannot overfit much.

With probability ≥ 1 − δ, for a prefix-free code c of the compressed model and its error êrr on the
n training examples (ANCHORS.md; Zhou et al. 2019; Lotfi et al. 2022):
- kl form:        kl(êrr ‖ err) ≤ (|c| ln 2 + ln(1/δ)) / n, inverted numerically;
- Catoni form:    err ≤ [1 − exp(−t·êrr − (|c| ln 2 + ln(|T|/δ))/n)] / (1 − e^(−t)), minimised over a
                  grid T of t = λ/n (paid for by a union bound over T);
- Hoeffding form: err ≤ êrr + √((|c| ln 2 + ln(1/δ)) / (2n)), looser, shown for reference.
"""

from __future__ import annotations

import math

# t = λ/n on a geometric grid from 1/16 to 2^10: the Catoni optimum lies inside for any error rate.
CATONI_GRID = tuple(2.0 ** (k / 4) for k in range(-16, 41))


def kl_bernoulli(q: float, p: float) -> float:
    """kl(q ‖ p) between Bernoulli(q) and Bernoulli(p)."""
    def term(a: float, b: float) -> float:
        return 0.0 if a == 0 else a * math.log(a / b)

    if p <= 0 or p >= 1:
        return 0.0 if p == q else math.inf
    return term(q, p) + term(1 - q, 1 - p)


def kl_inverse_upper(q: float, budget: float, tolerance: float = 1e-12) -> float:
    """The largest p ≥ q with kl(q ‖ p) ≤ budget, by bisection (kl is increasing in p on [q, 1])."""
    if budget <= 0:
        return q
    lo, hi = q, 1.0
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        if kl_bernoulli(q, mid) > budget:
            hi = mid
        else:
            lo = mid
    return lo


def _complexity(bits: float, delta: float) -> float:
    return bits * math.log(2) + math.log(1 / delta)


def kl_bound(train_error: float, bits: float, n: int, delta: float) -> float:
    return kl_inverse_upper(train_error, _complexity(bits, delta) / n)


def hoeffding_bound(train_error: float, bits: float, n: int, delta: float) -> float:
    return train_error + math.sqrt(_complexity(bits, delta) / (2 * n))


def catoni_bound(train_error: float, bits: float, n: int, delta: float, grid: tuple[float, ...] = CATONI_GRID) -> float:
    c = _complexity(bits, delta / len(grid)) / n
    return min((1 - math.exp(-t * train_error - c)) / (1 - math.exp(-t)) for t in grid)


def log2_binomial(total: int, chosen: int) -> float:
    """log2 C(total, chosen) through lgamma: the bits to say which `chosen` of `total` positions are kept."""
    return (math.lgamma(total + 1) - math.lgamma(chosen + 1) - math.lgamma(total - chosen + 1)) / math.log(2)


def entropy_bits(counts: list[int]) -> float:
    """Bits to code a sequence with these symbol counts by an ideal entropy coder (Σ −c·log2(c/N))."""
    total = sum(counts)
    return -sum(c * math.log2(c / total) for c in counts if c)


# The coder's header: the smallest symbol and the alphabet's size, one 32-bit integer each.
TABLE_HEADER_BITS = 64


def coder_table_bits(counts: list[int]) -> float:
    """Bits for the entropy coder's table, which a decoder needs before the first symbol: the header, then each
    symbol's count in log2(N + 1) bits (a count is in 0..N). A code length without it undercounts (issue 18:
    186 counts, ~1,860 bits, 6.4% of one code)."""
    total = sum(counts)
    return TABLE_HEADER_BITS + len(counts) * math.log2(total + 1) if counts else 0.0


def entropy_code_bits(counts: list[int]) -> float:
    """A complete entropy code of a sequence: its table and its ideal code length."""
    return coder_table_bits(counts) + entropy_bits(counts)
