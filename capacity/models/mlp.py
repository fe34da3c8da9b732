"""The MLP family: Flatten, then Linear + activation per hidden layer, then a linear head."""

from __future__ import annotations

import math

import torch
from torch import nn

from effcap.capacity.models.spec import MLPSpec

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Module):
    """Parameter names are stable ("hidden.0.weight", "head.weight") because checkpoints use them."""

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        widths = [math.prod(spec.input_shape), *spec.hidden_sizes]
        self.hidden = nn.ModuleList(nn.Linear(a, b, bias=spec.bias) for a, b in zip(widths, widths[1:]))
        self.activation = ACTIVATIONS[spec.activation]()
        self.head = nn.Linear(widths[-1], spec.num_classes, bias=spec.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = self.activation(layer(x))
        return self.head(x)
