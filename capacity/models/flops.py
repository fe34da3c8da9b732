"""Counting multiply-adds of a forward pass by tracing the model on the meta device (no compute)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

_COUNTED = (nn.Linear, nn.modules.conv._ConvNd)


def multiply_adds(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of the Linear and Conv layers for one example: the cost that dominates training."""
    total = 0

    def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += math.prod(output.shape[1:]) * module.in_features
        else:
            total += math.prod(output.shape[1:]) * (module.in_channels // module.groups) * math.prod(module.kernel_size)

    traced = copy.deepcopy(model).to("meta")
    for module in traced.modules():
        if isinstance(module, _COUNTED):
            module.register_forward_hook(count)
    with torch.no_grad():
        traced(torch.empty(1, *input_shape, device="meta"))
    return total
