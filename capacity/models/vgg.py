"""VGG for 32x32 inputs (Simonyan and Zisserman 2015, configurations A and D), as kuangliu/pytorch-cifar
builds it: the conv stack of the paper, then a single Linear from the 1x1x512 features to the classes
(the ImageNet model's three FC layers would not fit CIFAR's scale). VGG-16 with BN on CIFAR-10 has
14,728,266 parameters, VGG-11 with BN 9,231,114.

Names follow kuangliu's (features.0 is the first conv, features.1 its BN, classifier the Linear), so its
checkpoints load by name.
"""

from __future__ import annotations

import torch
from torch import nn

from effcap.capacity.models.spec import VGGSpec


def feature_indices(spec: VGGSpec) -> tuple[tuple[int | str, int], ...]:
    """(width or "M", index in `features`) per entry of the spec's layers: one conv takes 2 or 3 modules."""
    per_conv = 3 if spec.batch_norm else 2
    indices, position = [], 0
    for layer in spec.layers():
        indices.append((layer, position))
        position += 1 if layer == "M" else per_conv
    return tuple(indices)


class VGG(nn.Module):
    def __init__(self, spec: VGGSpec) -> None:
        super().__init__()
        channels, height, width = spec.input_shape
        layers: list[nn.Module] = []
        for layer in spec.layers():
            if layer == "M":
                layers.append(nn.MaxPool2d(2, 2))
                height, width = height // 2, width // 2
                continue
            layers.append(nn.Conv2d(channels, layer, 3, padding=1))
            if spec.batch_norm:
                layers.append(nn.BatchNorm2d(layer))
            layers.append(nn.ReLU())
            channels = layer
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * height * width, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
