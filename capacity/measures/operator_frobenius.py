"""Frobenius norms of layers as linear maps.

A convolution's dense matrix holds each kernel weight once for every output position whose window
puts that weight on a real input pixel (not on padding), so ‖A‖²_F = Σ_k N_k·‖W[:, :, k]‖², with N_k
the number of such positions for kernel offset k. Without padding N_k is the number of output
positions for every k, and ‖A‖_F is the kernel's norm times √(output positions); with padding the
offsets near the border touch fewer, which this counts exactly. The bounds need ‖A‖_F (the kernel's
norm is smaller by up to √positions per layer, which multiplies over depth); the kernel norm is
reported beside it as what it is.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def offset_counts(layer: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """N_k for every kernel offset k (shape: the kernel's spatial shape): how many (input, output) position pairs
    the offset connects, found by running the layer's geometry on an all-ones input with one-hot kernels."""
    spatial = tuple(layer.kernel_size)
    offsets = math.prod(spatial)
    one_hot = torch.eye(offsets, dtype=torch.float64).reshape(offsets, 1, *spatial)
    ones = torch.ones(1, 1, *input_shape[1:], dtype=torch.float64)
    dims = len(spatial) - 1
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        transposed = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[dims]
        geometry = (layer.stride, layer.padding, layer.output_padding, 1, layer.dilation)
        out = transposed(ones, one_hot.transpose(0, 1), None, *geometry)
    else:
        conv = (F.conv1d, F.conv2d, F.conv3d)[dims]
        out = conv(ones, one_hot, None, layer.stride, layer.padding, layer.dilation)
    return out.sum(dim=tuple(i for i in range(out.dim()) if i != 1)).reshape(spatial)


def operator_frobenius_norm(layer: nn.Module, input_shape: tuple[int, ...]) -> float:
    """‖A‖_F of the layer's linear map at one input of `input_shape` (a Linear's is its weight's)."""
    weight = layer.weight.detach().double().cpu()
    if isinstance(layer, nn.Linear):
        return float(weight.norm())
    if getattr(layer, "padding_mode", "zeros") != "zeros":
        raise TypeError(f"no linear-map Frobenius norm for padding mode {layer.padding_mode}")
    per_offset = (weight**2).sum(dim=(0, 1))  # Σ over channels of W[:, :, k]², one per kernel offset
    return math.sqrt(float((per_offset * offset_counts(layer, input_shape)).sum()))
