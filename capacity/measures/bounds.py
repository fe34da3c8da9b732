"""Generalisation bounds from capacity measures, each with its inputs stated and a `vacuous` flag.

Norm-based bounds are stated for the margin loss at γ (the 10th-percentile margin) with the
constants of their headline theorems where those are explicit, and without the O(·)/Õ(·)
constants and log factors where they are not; each Bound says which. None of these is fully paid:
Bartlett's and Neyshabur's omit constants, and γ (the Golowich bound's too) is chosen on the data with
no union bound over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from effcap.capacity.measures.norms import NormMeasures

# A bound within this of 1 reads as 1.000 in every report: it is vacuous.
VACUOUS_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Bound:
    name: str
    # Bound on the test error (0-1 loss) with probability ≥ 1 − δ; None when it does not apply.
    value: float | None
    # The formula with its inputs, for a reader to check.
    inputs: str
    reference: str
    # What the value bounds the test error of: the checkpoint, or another classifier (a posterior Q, a
    # compressed model), named.
    bounds_on: str = "the checkpoint"
    # True only when every constant, every choice made on the data and every estimate's confidence is
    # paid for: only such a value is a bound a reader can act on (the card counts no others).
    fully_paid: bool = False

    @property
    def vacuous(self) -> bool:
        """No bound, or one that says no more than 'error ≤ 1' to the precision reports show (a PAC-Bayes kl
        inversion lands at 1 − 7e-13 when the KL term is large; the card must not call that non-vacuous)."""
        return self.value is None or self.value >= 1.0 - VACUOUS_TOLERANCE


def rademacher_bound(train_loss: float, lipschitz: float, rademacher: float, n: int, delta: float) -> float:
    """L_D ≤ L_S + 2L·R̂_S + 3√(ln(2/δ)/(2n)), for a loss in [0, 1] that is L-Lipschitz in the output."""
    return train_loss + 2 * lipschitz * rademacher + 3 * math.sqrt(math.log(2 / delta) / (2 * n))


def golowich_rademacher(measures: NormMeasures) -> float:
    """Golowich, Rakhlin, Shamir (2018), thm 1: R̂_n ≤ B(√(2 log 2 · d) + 1) Π‖W_j‖_F / √n for ReLU nets."""
    d, n = measures.depth, measures.num_examples
    return measures.input_norm_max * (math.sqrt(2 * math.log(2) * d) + 1) * measures.frobenius_product / math.sqrt(n)


def norm_bounds(measures: NormMeasures, num_classes: int, delta: float, caveat: str | None = None) -> list[Bound]:
    """The chain bounds; `caveat` (an architecture that is not a chain, see topology.py) is prefixed to each."""
    bounds = _chain_bounds(measures, num_classes, delta)
    if caveat is None:
        return bounds
    return [Bound(b.name, b.value, f"{caveat} {b.inputs}", b.reference, b.bounds_on, b.fully_paid) for b in bounds]


def _chain_bounds(measures: NormMeasures, num_classes: int, delta: float) -> list[Bound]:
    gamma, n, d = measures.margin.value, measures.num_examples, measures.depth
    if not measures.margin.valid:
        reason = f"not applicable: {100 * measures.margin.misclassified_fraction:.1f}% of training examples are misclassified, so the 10th-percentile margin is {gamma:.3g} ≤ 0"
        return [Bound(name, None, reason, ref) for name, ref in _REFERENCES.items()]
    margin_error = measures.margin.below_margin_fraction
    k = num_classes
    golowich = golowich_rademacher(measures)
    confidence = math.sqrt(math.log(1 / delta) / (2 * n))
    bounds = [
        Bound(
            "golowich_frobenius",
            margin_error + 4 * k * golowich / gamma + confidence,
            f"L̂_γ + 4K·R̂/γ + √(ln(1/δ)/2n) with R̂ = B(√(2 ln2 d)+1)ΠW_F/√n = {golowich:.4g}, L̂_γ = {margin_error:.3g}, "
            f"K = {k}, γ = {gamma:.4g}, B = {measures.input_norm_max:.4g}, ΠW_F = {measures.frobenius_product:.4g} "
            f"(Frobenius norms of the layers' linear maps), d = {d}, n = {n}, δ = {delta:g}",
            _REFERENCES["golowich_frobenius"],
        )
    ]
    ratios = sum((layer.l21_transpose / layer.spectral) ** (2 / 3) for layer in measures.layers if layer.spectral > 0)
    spectral_complexity = measures.spectral_product * ratios**1.5
    # W counts every layer's units, the input's included (Bartlett et al.'s W is the widest layer of the network).
    width = max(math.prod(measures.layers[0].input_shape), *(layer.width for layer in measures.layers))
    bartlett = margin_error + measures.input_norm_frobenius * spectral_complexity * math.log(width) / (gamma * n) + math.sqrt(math.log(1 / delta) / n)
    bounds.append(
        Bound(
            "bartlett_spectral",
            bartlett,
            f"L̂_γ + ‖X‖_F·R_A·ln W/(γn) + √(ln(1/δ)/n), Õ constants omitted; R_A = Πσ·(Σ(‖Wᵀ‖₂,₁/σ)^(2/3))^(3/2) = {spectral_complexity:.4g}, "
            f"‖X‖_F = {measures.input_norm_frobenius:.4g}, W = {width} (the widest layer, input included), "
            f"γ = {gamma:.4g}, n = {n}",
            _REFERENCES["bartlett_spectral"],
        )
    )
    h = max(layer.width for layer in measures.layers)
    stable = sum(layer.frobenius**2 / layer.spectral**2 for layer in measures.layers if layer.spectral > 0)
    inner = measures.input_norm_max**2 * d**2 * h * math.log(d * h) * measures.spectral_product**2 * stable + math.log(d * n / delta)
    bounds.append(
        Bound(
            "neyshabur_pac_bayes",
            margin_error + math.sqrt(inner / (gamma**2 * n)),
            f"L̂_γ + √([B²d²h ln(dh) Πσ² Σ‖W‖_F²/σ² + ln(dn/δ)]/(γ²n)), O constant omitted; B = {measures.input_norm_max:.4g}, d = {d}, h = {h}, "
            f"Πσ = {measures.spectral_product:.4g}, Σ‖W‖_F²/σ² = {stable:.4g} (both norms of the layers' linear maps), "
            f"γ = {gamma:.4g}, n = {n}",
            _REFERENCES["neyshabur_pac_bayes"],
        )
    )
    return bounds


_REFERENCES = {
    "golowich_frobenius": "Golowich, Rakhlin, Shamir, COLT 2018, thm 1; multiclass margin bound of Mohri et al. 2018, thm 9.2",
    "bartlett_spectral": "Bartlett, Foster, Telgarsky, NeurIPS 2017, thm 1.1",
    "neyshabur_pac_bayes": "Neyshabur, Bhojanapalli, Srebro, ICLR 2018, thm 1",
}
