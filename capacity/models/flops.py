"""Counting multiply-adds of a forward pass by tracing the model on the meta device (no compute)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from effcap.capacity.models.vit import SelfAttention

_COUNTED = (nn.Linear, nn.modules.conv._ConvNd, SelfAttention)


def multiply_adds(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of the Linear and Conv layers (and attention's products) for one example: the cost that
    dominates training."""
    return sum(layer_multiply_adds(model, input_shape).values())


def layer_multiply_adds(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Multiply-adds per Linear/Conv layer (by module name) for one example.

    Self-attention's two weightless products, q kᵀ and (softmax) v, count as a layer of their own under the
    attention module's name: N²·D each for N tokens of width D, against about 12·N·D² in the block's Linear
    layers, so they matter for short widths and long sequences. Its qkv and proj Linears count as usual.
    """
    counts: dict[str, int] = {}

    def counter(name: str):
        def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(module, SelfAttention):
                tokens, dim = output.shape[1:]
                counts[name] = counts.get(name, 0) + 2 * tokens * tokens * dim
                return
            per_output = module.in_features if isinstance(module, nn.Linear) else (module.in_channels // module.groups) * math.prod(module.kernel_size)
            counts[name] = counts.get(name, 0) + math.prod(output.shape[1:]) * per_output

        return count

    traced = copy.deepcopy(model).to("meta").eval()  # one example: a training-mode BN on a 1x1 map would refuse it
    for name, module in traced.named_modules():
        if isinstance(module, _COUNTED):
            module.register_forward_hook(counter(name))
    with torch.no_grad():
        traced(torch.empty(1, *input_shape, device="meta"))
    return counts
