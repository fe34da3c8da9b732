"""Spectral norms of layers as linear operators.

A convolution's spectral norm is that of the linear map it computes at its real input size, with
its stride and padding — not that of the reshaped kernel (a common slip, ANCHORS.md). We find it by
power iteration on AᵀA, where Aᵀ is applied exactly as the vector-Jacobian product of the layer
(for a conv: the transposed convolution with the right output size), so it is exact for any stride,
padding, dilation or groups.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

POWER_ITERATIONS = 500
TOLERANCE = 1e-9


def _conv_map(layer: nn.Module):
    """The convolution without its bias: x -> A x."""
    if isinstance(layer, nn.Conv2d):
        return lambda x: F.conv2d(x, layer.weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    if isinstance(layer, nn.Conv1d):
        return lambda x: F.conv1d(x, layer.weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    raise TypeError(f"no linear map for {type(layer).__name__}")


def operator_spectral_norm(layer: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> float:
    """Largest singular value of the layer's linear map on one input of `input_shape`."""
    if isinstance(layer, nn.Linear):
        return float(torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2))
    apply = _conv_map(layer)
    generator = torch.Generator().manual_seed(seed)
    weight = layer.weight.detach()
    x = torch.randn(1, *input_shape, generator=generator, dtype=weight.dtype).to(weight.device)
    x /= x.norm()
    estimate = 0.0
    for _ in range(POWER_ITERATIONS):
        x.requires_grad_(True)
        with torch.enable_grad():  # the adjoint is a vector-Jacobian product, also under no_grad callers
            y = apply(x)
            new_estimate = float(y.detach().norm())  # ‖Ax‖ for unit x: a lower bound that rises to σ
            (ata_x,) = torch.autograd.grad(y, x, grad_outputs=y)  # Aᵀ(Ax)
        norm = ata_x.norm()
        if norm == 0:
            return 0.0
        x = (ata_x / norm).detach()
        converged = abs(new_estimate - estimate) <= TOLERANCE * new_estimate
        estimate = new_estimate
        if converged:
            break
    return estimate


def reshaped_kernel_spectral_norm(layer: nn.Module) -> float:
    """The common approximation: spectral norm of the kernel reshaped to (c_out, c_in·k·k). Not the operator's."""
    weight = layer.weight.detach().double()
    return float(torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2))
