"""The measures of Jiang et al. (2020) that ranked best and are cheap here, each named and numbered as they are.

"Fantastic generalization measures and where to find them" (ICLR 2020) defines ~40 measures in its appendix C
and ranks them by how well they predict the generalisation gap; docs/measures.md gives every definition used
here. These are predictors, not bounds: no value is a bound on test error, and none enters the capacity card.
"Weights" are the Linear/Conv weight tensors W_i (biases excluded, BatchNorm folded in where the network has it,
as Jiang et al. reparametrise); W_i⁰ are the same tensors at initialisation (not folded: running statistics are
not parameters; the same for networks without BatchNorm).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from effcap.capacity.measures.flatness import Flatness
from effcap.capacity.measures.layers import weight_layers
from effcap.capacity.measures.norms import NormMeasures
from effcap.capacity.measures.spectral import operator_spectral_norm
from effcap.capacity.measures.steps_to_loss import StepsToLoss

REFERENCE = "Jiang, Neyshabur, Mobahi, Krishnan, Bengio, ICLR 2020, appendix C"


@dataclass(frozen=True)
class GeneralizationMeasure:
    # Jiang et al.'s name for it, e.g. "pacbayes.mag.flatness".
    name: str
    # Where it is defined, e.g. "eq. 61".
    equation: str
    # None when it does not apply (no initial checkpoint, no valid margin, threshold not reached): `note` says why.
    value: float | None
    # The formula with its inputs, for a reader to check.
    definition: str
    note: str = ""


@dataclass(frozen=True)
class InitDistances:
    # Σ_i ‖W_i − W_i⁰‖²_F (eq. 40), over the weight tensors.
    frobenius_squared: float
    # Σ_i ‖W_i − W_i⁰‖²₂ (eq. 41), each the spectral norm of the layer's linear map at its input size.
    spectral_squared: float


@torch.no_grad()
def init_distances(model: nn.Module, initial: nn.Module, input_shape: tuple[int, ...]) -> InitDistances:
    """Eqs. 40 and 41 between two networks of one architecture, layer by layer in forward order."""
    frobenius, spectral = 0.0, 0.0
    for layer, start in zip(weight_layers(model, input_shape), weight_layers(initial, input_shape)):
        difference = copy.deepcopy(layer.module)
        difference.weight.copy_(layer.module.weight - start.module.weight)
        frobenius += float((difference.weight.double() ** 2).sum())
        spectral += operator_spectral_norm(difference, layer.input_shape) ** 2
    return InitDistances(frobenius, spectral)


def weights_squared_norm(folded: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Σ_i ‖W_i‖²_F over the weight tensors of the BatchNorm-folded network (eq. 42)."""
    return sum(
        float((layer.module.weight.detach().double() ** 2).sum()) for layer in weight_layers(folded, input_shape)
    )


def generalization_measures(
    norms: NormMeasures,
    parameter_norm_squared: float,
    flatness: dict[str, Flatness],
    steps: StepsToLoss | None,
    distances: InitDistances | None,
) -> list[GeneralizationMeasure]:
    """The catalogue in the order of Jiang et al.'s appendix; `flatness` is keyed by the measure's name."""
    gamma = norms.margin.value
    path = norms.path_norm**2
    no_init = "needs the initial checkpoint (CreateAuditRequest.initial_model)"
    measures = [
        _distance(
            "fro.dist", "eq. 40", "Σ_i ‖W_i − W_i⁰‖²_F", distances.frobenius_squared if distances else None, no_init
        ),
        _distance(
            "dist.spec.init",
            "eq. 41",
            "Σ_i ‖W_i − W_i⁰‖²₂ (spectral norms of the layers' linear maps)",
            distances.spectral_squared if distances else None,
            no_init,
        ),
        GeneralizationMeasure(
            "param.norm", "eq. 42", parameter_norm_squared, "Σ_i ‖W_i‖²_F (weight tensors, BatchNorm folded)"
        ),
        GeneralizationMeasure(
            "path.norm.over.margin",
            "eq. 43",
            path / gamma**2 if norms.margin.valid else None,
            f"Σ_paths Π w² / γ² with γ = {gamma:.4g} (10th-percentile margin)",
            "" if norms.margin.valid else "over 10% of the examples are misclassified: no positive margin",
        ),
        GeneralizationMeasure("path.norm", "eq. 44", path, "Σ over input-output paths (bias paths included) of Π w²"),
    ]
    for name, equation, symbol, form in _FLATNESS:
        if name in flatness:
            f = flatness[name]
            capped = f" (capped: Δ stayed ≤ {f.threshold:g} at the search's upper end)" if f.capped else ""
            found = (
                f"{symbol} = {f.scale:.4g}{capped}, Δ = {f.error_increase:.4g} there, {f.forward_passes} forward passes"
            )
            definition = f"{form}; {found}"
            measures.append(GeneralizationMeasure(name, equation, f.flatness, definition))
    if steps is not None:
        reached = steps.steps is not None
        measures.append(
            GeneralizationMeasure(
                "steps.to.ce.0.1" if steps.threshold == 0.1 else f"steps.to.ce.{steps.threshold:g}",
                "appendix C, optimisation-based",
                float(steps.steps) if reached else None,
                f"SGD steps from initialisation until the training cross-entropy is ≤ {steps.threshold:g}",
                ""
                if reached
                else f"not reached in {steps.steps_run} steps ({steps.max_epochs} epochs, the training budget)",
            )
        )
    return measures


def _distance(name: str, equation: str, definition: str, value: float | None, missing: str) -> GeneralizationMeasure:
    return GeneralizationMeasure(name, equation, value, definition, "" if value is not None else missing)


# Name, equation, symbol, and the scale whose inverse square each reports (Δ: the training error's increase).
_FLATNESS = [
    ("pacbayes.flatness", "eq. 53", "σ'", "1/σ'², σ' the largest σ with E Δ ≤ 0.1 under u ~ N(0, σ²I)"),
    ("sharpness.flatness", "eq. 54", "α'", "1/α'², α' the largest α with max_{|u_i| ≤ α} Δ ≤ 0.1"),
    ("pacbayes.mag.flatness", "eq. 61", "σ'", "1/σ'², σ' the largest σ with E Δ ≤ 0.1 under u_i ~ N(0, σ²w_i² + ε²)"),
    ("sharpness.mag.flatness", "eq. 62", "α'", "1/α'², α' the largest α with max_{|u_i| ≤ α|w_i| + ε} Δ ≤ 0.1"),
]
