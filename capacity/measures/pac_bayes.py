"""PAC-Bayes bounds for a Gaussian posterior with every choice and estimate paid for.

The posterior is Q = N(w, σ²I) about the checkpoint's weights w, the prior P = N(0, σ²I), so
KL(Q ‖ P) = ‖w‖²/(2σ²). Three things are learnt from the training data, and each is paid:
- σ is searched on the data, and the prior depends on it: the bound is made to hold for every σ of the
  finite grid the search can return, by a union bound (δ/|grid| each), as Dziugaite & Roy (2017) do for
  their prior variance;
- Q's training error is estimated from m sampled networks, drawn afresh after the search: the
  sample-convergence bound of Langford & Caruana (2001), kl(ê(Q̂_m) ‖ ê(Q)) ≤ ln(2/δ′)/m, turns the
  estimate into an upper bound on ê(Q) with probability ≥ 1 − δ′;
- the PAC-Bayes-kl bound (Seeger 2002; Maurer 2004): kl(ê(Q) ‖ e(Q)) ≤ (KL + ln(2√n/δ_PB))/n, inverted
  numerically; the Pinsker (McAllester) form ê + √((KL + ln(2√n/δ_PB))/(2n)) is reported beside it.
δ is split δ′ = δ/2 for the sampling and δ_PB = δ/(2|grid|) for each σ, so all hold together with
probability ≥ 1 − δ. The value bounds the error of the stochastic classifier Q, not of the checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from effcap.capacity.measures.compression_bounds import kl_inverse_upper

# Networks sampled from Q, after the σ search and independent of it, for the Monte-Carlo estimate of ê(Q).
BOUND_SAMPLES = 100


@dataclass(frozen=True)
class GaussianPacBayes:
    # Mean training error of the `samples` networks drawn from Q (the Monte-Carlo estimate ê(Q̂_m)).
    sampled_error: float
    samples: int
    # Upper bound on ê(Q) from the sampled error (Langford & Caruana).
    error_upper: float
    divergence: float
    grid_size: int
    n: int
    delta: float
    # Test-error bounds on Q: the kl form (the tighter one) and the Pinsker form.
    kl: float
    pinsker: float

    @property
    def complexity(self) -> float:
        """KL + ln(2√n/δ_PB), the numerator both forms pay."""
        return self.divergence + math.log(2 * math.sqrt(self.n) * 2 * self.grid_size / self.delta)


def gaussian_pac_bayes(
    sampled_error: float, samples: int, sigma: float, weights_squared_norm: float, grid_size: int, n: int, delta: float
) -> GaussianPacBayes:
    """The fully paid bounds on Q's test error (module docstring); infinite for σ = 0 (KL is)."""
    error_upper = kl_inverse_upper(sampled_error, math.log(2 / (delta / 2)) / samples)
    divergence = weights_squared_norm / (2 * sigma**2) if sigma > 0 else math.inf
    partial = GaussianPacBayes(sampled_error, samples, error_upper, divergence, grid_size, n, delta, math.inf, math.inf)
    if math.isinf(divergence):
        return partial
    budget = partial.complexity
    kl = kl_inverse_upper(error_upper, budget / n)
    pinsker = error_upper + math.sqrt(budget / (2 * n))
    return GaussianPacBayes(sampled_error, samples, error_upper, divergence, grid_size, n, delta, kl, pinsker)
