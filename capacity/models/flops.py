"""Counting multiply-adds of a forward pass by tracing the model on the meta device (no compute)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

_COUNTED = (nn.Linear, nn.modules.conv._ConvNd)


def multiply_adds(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of the Linear and Conv layers for one example: the cost that dominates training."""
    return sum(layer_multiply_adds(model, input_shape).values())


def layer_multiply_adds(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Multiply-adds per Linear/Conv layer (by module name) for one example."""
    counts: dict[str, int] = {}

    def counter(name: str):
        def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            per_output = module.in_features if isinstance(module, nn.Linear) else (module.in_channels // module.groups) * math.prod(module.kernel_size)
            counts[name] = counts.get(name, 0) + math.prod(output.shape[1:]) * per_output

        return count

    traced = copy.deepcopy(model).to("meta")
    for name, module in traced.named_modules():
        if isinstance(module, _COUNTED):
            module.register_forward_hook(counter(name))
    with torch.no_grad():
        traced(torch.empty(1, *input_shape, device="meta"))
    return counts
