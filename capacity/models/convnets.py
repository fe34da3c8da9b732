"""Convolutional families: LeNet-5, the small CNN of our benchmarks, and Zhang et al.'s small AlexNet."""

from __future__ import annotations

import math

import torch
from torch import nn

from effcap.capacity.models.spec import AlexNetSmallSpec, LeNet5Spec, SmallCNNSpec


def conv_block(c_in: int, c_out: int, kernel: int, batch_norm: bool, stride: int = 1, padding: int | str = "same") -> nn.Sequential:
    """conv (with bias unless BatchNorm follows), optional BatchNorm, ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class LeNet5(nn.Module):
    def __init__(self, spec: LeNet5Spec) -> None:
        super().__init__()
        channels, height, width = spec.input_shape
        (c1, c2), (f1, f2) = spec.conv_channels, spec.fc_sizes
        self.features = nn.Sequential(
            nn.Conv2d(channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        flat = c2 * ((height // 2 - 4) // 2) * ((width // 2 - 4) // 2)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, f1), nn.ReLU(), nn.Linear(f1, f2), nn.ReLU(), nn.Linear(f2, spec.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SmallCNN(nn.Module):
    def __init__(self, spec: SmallCNNSpec) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = spec.input_shape[0]
        for i, c_out in enumerate(spec.channels):
            layers.append(conv_block(c_in, c_out, 3, spec.batch_norm))
            if i < len(spec.channels) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class AlexNetSmall(nn.Module):
    """Parameter count 1,387,786 on 3x28x28 inputs (Zhang et al., table 1), without BatchNorm."""

    def __init__(self, spec: AlexNetSmallSpec) -> None:
        super().__init__()
        channels, height, width = spec.input_shape

        (c1, c2), (f1, f2) = spec.conv_channels, spec.fc_sizes

        def block(c_in: int, c_out: int) -> nn.Sequential:
            # TensorFlow's SAME max-pool 3x3/2 is padding 1 here: the same output size, but on an even input TF
            # pads only bottom and right, so TF's windows sit one pixel lower and to the right of these (the
            # difference is documented in docs/architectures.md; kept, so checkpoints keep their function).
            # TF's LRN(depth_radius=4, alpha=1e-3/9) is size 9 with alpha 1e-3 in PyTorch's convention (PyTorch
            # divides alpha by size).
            return nn.Sequential(
                conv_block(c_in, c_out, 5, spec.batch_norm), nn.MaxPool2d(3, 2, padding=1), nn.LocalResponseNorm(9, alpha=1e-3, beta=0.75, k=1.0)
            )

        self.features = nn.Sequential(block(channels, c1), block(c1, c2))
        # Each SAME pool halves the size, rounding up.
        flat = c2 * math.ceil(math.ceil(height / 2) / 2) * math.ceil(math.ceil(width / 2) / 2)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, f1), nn.ReLU(), nn.Linear(f1, f2), nn.ReLU(), nn.Linear(f2, spec.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
