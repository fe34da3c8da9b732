"""Empirical spectral densities of weight matrices and their power-law fits (Martin & Mahoney).

Martin & Mahoney ("Implicit self-regularization in deep neural networks", JMLR 2021; "Predicting
trends in the quality of state-of-the-art neural networks without access to training or testing
data", Nat. Commun. 2021) read a layer's training quality off the eigenvalues λ of X = WᵀW: well
trained layers have a heavy tail p(λ) ∝ λ^(−α) with α in roughly [2, 6]; α < 2 is very heavy
tailed (over-fitted or over-regularised), α > 6 barely different from random. The fit is Clauset,
Shalizi & Newman's (SIAM Review 2009): for each candidate lower cut-off xmin, the maximum-likelihood
exponent of a continuous power law on the tail λ ≥ xmin,

    α̂ = 1 + n_tail / Σ ln(λᵢ / xmin),

and the xmin whose fitted law is closest to the tail's empirical CDF in Kolmogorov–Smirnov distance
D = max |F_emp(λ) − F_fit(λ)|, F_fit(λ) = 1 − (λ / xmin)^(1−α̂). D is reported as the fit's quality.

Everything here is a pure function of the eigenvalues, so it is checked against closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Fewer tail eigenvalues than this give no meaningful fit (a 3-point tail always "fits"); WeightWatcher
# skips layers with fewer than 10 eigenvalues for the same reason.
MIN_TAIL_EIGENVALUES = 10
# Eigenvalues below this share of the largest are numerically zero (rank deficiency), not part of the ESD.
ZERO_EIGENVALUE_RTOL = 1e-10
HISTOGRAM_BINS = 30
# Candidate cut-offs scanned per block: a block × eigenvalues array of floats (256 × 6,000 is 12 MB).
SCAN_BLOCK = 256


@dataclass(frozen=True)
class PowerLawFit:
    alpha: float
    xmin: float
    # Kolmogorov–Smirnov distance between the tail's empirical CDF and the fitted power law.
    ks_distance: float
    tail_eigenvalues: int


@dataclass(frozen=True)
class SpectrumSummary:
    """What the ESD of one layer says: norms, stable rank, the power-law fit (None when too few eigenvalues)."""

    eigenvalues: int
    spectral_norm: float
    frobenius_norm: float
    stable_rank: float
    fit: PowerLawFit | None
    # log-spaced histogram of the positive eigenvalues: len(bin_edges) == len(counts) + 1.
    bin_edges: list[float]
    counts: list[int]


def eigenvalues_of_gram(matrices: list[np.ndarray]) -> np.ndarray:
    """Eigenvalues of WᵀW for each matrix (its squared singular values, min(N, M) of them), pooled and sorted."""
    values = [np.linalg.svd(np.asarray(m, dtype=np.float64), compute_uv=False) ** 2 for m in matrices]
    return np.sort(np.concatenate(values))


def stable_rank(eigenvalues: np.ndarray) -> float:
    """‖W‖_F² / ‖W‖₂² = Σλ / max λ: the number of directions that carry the matrix's energy (1 ≤ it ≤ rank)."""
    largest = float(np.max(eigenvalues))
    return float(np.sum(eigenvalues) / largest) if largest > 0 else 0.0


def power_law_mle(tail: np.ndarray, xmin: float) -> float:
    """Continuous power-law exponent on λ ≥ xmin by maximum likelihood: 1 + n / Σ ln(λ / xmin)."""
    log_sum = float(np.sum(np.log(tail / xmin)))
    return 1.0 + len(tail) / log_sum if log_sum > 0 else float("inf")


def ks_distance(tail: np.ndarray, xmin: float, alpha: float) -> float:
    """max |F_emp − F_fit| over the sorted tail, taking both sides of each step of the empirical CDF."""
    n = len(tail)
    fitted = 1.0 - (tail / xmin) ** (1.0 - alpha)
    above = np.arange(1, n + 1) / n - fitted
    below = fitted - np.arange(0, n) / n
    return float(max(np.max(above), np.max(below)))


def fit_power_law(eigenvalues: np.ndarray, min_tail: int = MIN_TAIL_EIGENVALUES) -> PowerLawFit | None:
    """Clauset's method: the (xmin, α̂) of least KS distance over the xmins that leave ≥ `min_tail` points.

    Every distinct eigenvalue is a candidate; the scan is vectorised over blocks of candidates (a ResNet
    layer has thousands of eigenvalues, and one candidate at a time in Python takes seconds per layer). The
    winner's α̂ and D are then computed by `power_law_mle` and `ks_distance`, the definitions themselves.
    """
    values = np.sort(eigenvalues[eigenvalues > 0])
    n = len(values)
    if n < min_tail:
        return None
    logs = np.log(values)
    starts = np.arange(n - min_tail + 1)
    starts = starts[np.concatenate([[True], values[starts[1:]] != values[starts[1:] - 1]])]  # distinct cut-offs
    sizes = n - starts
    log_sums = np.cumsum(logs[::-1])[::-1][starts] - sizes * logs[starts]
    starts, sizes, log_sums = starts[log_sums > 0], sizes[log_sums > 0], log_sums[log_sums > 0]
    if len(starts) == 0:
        return None  # every tail is one repeated value: no exponent
    alphas = 1.0 + sizes / log_sums
    distances = np.concatenate(
        [
            _ks_distances(logs, starts[i : i + SCAN_BLOCK], alphas[i : i + SCAN_BLOCK])
            for i in range(0, len(starts), SCAN_BLOCK)
        ]
    )
    start = int(starts[np.argmin(distances)])
    tail, xmin = values[start:], float(values[start])
    alpha = power_law_mle(tail, xmin)
    return PowerLawFit(alpha=alpha, xmin=xmin, ks_distance=ks_distance(tail, xmin, alpha), tail_eigenvalues=len(tail))


def _ks_distances(logs: np.ndarray, starts: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """`ks_distance` for a block of cut-offs at once: row k is the tail from starts[k], other entries masked."""
    rank = np.arange(len(logs))[None, :] - starts[:, None]  # position within each tail; negative before it
    sizes = (len(logs) - starts)[:, None]
    # ln(λ / xmin), clipped at 0 before the tail so the masked entries cannot overflow.
    log_ratio = np.maximum(logs[None, :] - logs[starts][:, None], 0.0)
    fitted = 1.0 - np.exp((1.0 - alphas[:, None]) * log_ratio)
    gaps = np.maximum((rank + 1) / sizes - fitted, fitted - rank / sizes)
    return np.where(rank >= 0, gaps, -np.inf).max(axis=1)


def summarize_spectrum(eigenvalues: np.ndarray) -> SpectrumSummary:
    """Norms, stable rank, power-law fit and a log-binned histogram of one layer's ESD."""
    largest = float(np.max(eigenvalues)) if len(eigenvalues) else 0.0
    positive = eigenvalues[eigenvalues > ZERO_EIGENVALUE_RTOL * largest] if largest > 0 else eigenvalues[:0]
    edges, counts = _log_histogram(positive)
    return SpectrumSummary(
        eigenvalues=len(eigenvalues),
        spectral_norm=float(np.sqrt(largest)),
        frobenius_norm=float(np.sqrt(np.sum(eigenvalues))),
        stable_rank=stable_rank(eigenvalues) if largest > 0 else 0.0,
        fit=fit_power_law(positive),
        bin_edges=edges,
        counts=counts,
    )


def _log_histogram(values: np.ndarray) -> tuple[list[float], list[int]]:
    """Counts over log-spaced bins: heavy-tailed ESDs span decades, which linear bins would flatten into one."""
    if len(values) == 0:
        return [], []
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low:
        high = low * (1 + 1e-9) + 1e-300
    edges = np.geomspace(low, high, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(values, bins=edges)
    return edges.tolist(), counts.astype(int).tolist()
