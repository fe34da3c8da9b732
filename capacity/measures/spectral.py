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
    """The convolution (or transposed convolution) without its bias: x -> A x."""
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        transposed = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[len(layer.kernel_size) - 1]
        geometry = (layer.stride, layer.padding, layer.output_padding, layer.groups, layer.dilation)
        return lambda x: transposed(x, layer.weight, None, *geometry)
    if isinstance(layer, nn.modules.conv._ConvNd) and layer.padding_mode == "zeros":
        conv = (F.conv1d, F.conv2d, F.conv3d)[len(layer.kernel_size) - 1]
        return lambda x: conv(x, layer.weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    raise TypeError(f"no linear map for {type(layer).__name__}")


def kernel_rows(layer: nn.Module) -> torch.Tensor:
    """The weight as (output units, fan-in): each row one output channel's incoming weights.

    A conv's weight is (out, in/groups, *k) already; a transposed conv's is (in, out/groups, *k), so its
    groups' axes are swapped first."""
    weight = layer.weight.detach()
    if not isinstance(layer, nn.modules.conv._ConvTransposeNd):
        return weight.reshape(weight.shape[0], -1)
    groups = layer.groups
    per_group = weight.reshape(groups, weight.shape[0] // groups, weight.shape[1], -1)
    return per_group.transpose(1, 2).reshape(groups * weight.shape[1], -1)


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
    return float(torch.linalg.matrix_norm(kernel_rows(layer).double(), ord=2))
