"""Norm-based capacity measures of a trained network (Jiang et al. 2020; Dziugaite et al. 2020).

Computed on the network with BatchNorm folded in. "Weights" are the Linear/Conv weight tensors, d of
them; spectral norms are those of each layer's linear operator at its real input size (the
reshaped-kernel approximation is reported beside it, labelled as such), and so are Frobenius norms
(the kernel's norm is reported beside it, used by no bound).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from effcap.capacity.measures.layers import WeightLayer, fold_batchnorm, weight_layers
from effcap.capacity.measures.operator_frobenius import operator_frobenius_norm
from effcap.capacity.measures.spectral import kernel_rows, operator_spectral_norm, reshaped_kernel_spectral_norm

MARGIN_PERCENTILE = 10.0


@dataclass(frozen=True)
class LayerNorms:
    name: str
    kind: str
    input_shape: tuple[int, ...]
    # Spectral norm of the layer's linear operator (exact at its input size).
    spectral: float
    # Spectral norm of the kernel reshaped to (c_out, rest): the common approximation; equal to
    # `spectral` for Linear layers.
    spectral_reshaped_kernel: float
    # Frobenius norm of the layer's linear operator (exact at its input size); the bounds use this one.
    frobenius: float
    # Σ over output units of the ℓ2 norm of their incoming weights, counted once per output
    # position for convolutions (the (2,1) norm of the operator's transpose, up to padding).
    l21_transpose: float
    width: int
    # Frobenius norm of the weight tensor (a conv's kernel): smaller than the operator's by up to √(output
    # positions); reported, used by no bound.
    frobenius_kernel: float


@dataclass(frozen=True)
class Margin:
    """γ = 10th percentile of (true logit − largest other logit) over the training set."""

    value: float
    misclassified_fraction: float
    # L̂_γ: share of training examples with margin below γ (about 10% by construction).
    below_margin_fraction: float

    @property
    def valid(self) -> bool:
        """Over 10% misclassified makes the 10th-percentile margin ≤ 0: no margin bound applies."""
        return self.value > 0


@dataclass(frozen=True)
class NormMeasures:
    layers: list[LayerNorms]
    parameter_norm: float
    path_norm: float
    margin: Margin
    # Largest ℓ2 norm of a training input (B in the bounds) and ‖X‖_F.
    input_norm_max: float
    input_norm_frobenius: float
    num_examples: int

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def spectral_product(self) -> float:
        return math.prod(layer.spectral for layer in self.layers)

    @property
    def spectral_sum(self) -> float:
        return sum(layer.spectral for layer in self.layers)

    @property
    def frobenius_product(self) -> float:
        return math.prod(layer.frobenius for layer in self.layers)

    @property
    def frobenius_sum_of_squares(self) -> float:
        return sum(layer.frobenius**2 for layer in self.layers)


def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """ℓ2 path norm: √(Σ over input-to-output paths, bias paths included, of Π w²).

    Computed as Jiang et al. do: square every parameter, forward an all-ones input, sum the outputs
    (every activation is then non-negative, so ReLUs pass everything through).
    """
    squared = copy.deepcopy(model).eval().double()
    with torch.no_grad():
        for parameter in squared.parameters():
            parameter.pow_(2)
        device = next(squared.parameters()).device
        total = squared(torch.ones(1, *input_shape, dtype=torch.float64, device=device)).sum()
    return float(total.clamp_min(0).sqrt())


@torch.no_grad()
def margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> Margin:
    model.eval()
    margins = []
    for start in range(0, len(x), batch):
        logits = model(x[start : start + batch]).double()
        target = y[start : start + batch]
        true = logits.gather(1, target[:, None]).squeeze(1)
        others = logits.scatter(1, target[:, None], float("-inf")).amax(dim=1)
        margins.append(true - others)
    values = torch.cat(margins).cpu().numpy()
    gamma = float(np.percentile(values, MARGIN_PERCENTILE))
    return Margin(gamma, float(np.mean(values < 0)), float(np.mean(values < gamma)))


def layer_norms(layer: WeightLayer) -> LayerNorms:
    weight = layer.module.weight.detach().double()
    rows = kernel_rows(layer.module).double()
    positions = 1
    if not isinstance(layer.module, nn.Linear):
        with torch.no_grad():
            out = layer.module(torch.zeros(1, *layer.input_shape, dtype=layer.module.weight.dtype, device=layer.module.weight.device))
        positions = math.prod(out.shape[2:])
    return LayerNorms(
        name=layer.name,
        kind=type(layer.module).__name__,
        input_shape=layer.input_shape,
        spectral=operator_spectral_norm(layer.module, layer.input_shape),
        spectral_reshaped_kernel=reshaped_kernel_spectral_norm(layer.module),
        frobenius=operator_frobenius_norm(layer.module, layer.input_shape),
        l21_transpose=float(rows.norm(dim=1).sum()) * positions,
        width=int(rows.shape[0]),
        frobenius_kernel=float(weight.norm()),
    )


def norm_measures(model: nn.Module, input_shape: tuple[int, ...], x: torch.Tensor, y: torch.Tensor) -> NormMeasures:
    folded = fold_batchnorm(model)
    layers = [layer_norms(layer) for layer in weight_layers(folded, input_shape)]
    flat = x.reshape(len(x), -1).double()
    return NormMeasures(
        layers=layers,
        parameter_norm=float(torch.sqrt(sum((p.detach().double() ** 2).sum() for p in folded.parameters()))),
        path_norm=path_norm(folded, input_shape),
        margin=margin(folded, x, y),
        input_norm_max=float(flat.norm(dim=1).max()),
        input_norm_frobenius=float(flat.norm()),
        num_examples=len(x),
    )


@dataclass(frozen=True)
class DistanceFromInit:
    # √(Σ over all parameters of (w − w_init)²).
    frobenius: float
    # Σ over weight layers of the operator spectral norm of W − W_init at the layer's input size.
    spectral: float


@torch.no_grad()
def distance_from_init(model: nn.Module, initial: nn.Module, input_shape: tuple[int, ...]) -> DistanceFromInit:
    """Distances between two networks of one architecture (parameters as trained, BatchNorm not folded:
    folding would mix in running statistics, which are not parameters)."""
    squared = sum(float(((p.double() - q.double()) ** 2).sum()) for p, q in zip(model.parameters(), initial.parameters()))
    spectral = 0.0
    for layer, start in zip(weight_layers(model, input_shape), weight_layers(initial, input_shape)):
        difference = copy.deepcopy(layer.module)
        difference.weight.copy_(layer.module.weight - start.module.weight)
        spectral += operator_spectral_norm(difference, layer.input_shape)
    return DistanceFromInit(math.sqrt(squared), spectral)
