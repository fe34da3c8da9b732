"""Zhang et al.'s small Inception for 28x28 CIFAR crops (appendix A, figure 3).

conv 3x3/96 -> Inception (32,32), (32,48) -> Downsample(80) -> Inception (112,48), (96,64), (80,80),
(48,96) -> Downsample(96) -> Inception (176,160) x2 -> global mean pool -> linear. 1,649,402
parameters counting convs and the linear layer with biases (table 1).
"""

from __future__ import annotations

import torch
from torch import nn

from effcap.capacity.models.convnets import conv_block
from effcap.capacity.models.spec import InceptionSmallSpec

MODULES: tuple[tuple[str, int, int], ...] = (
    ("inception", 32, 32), ("inception", 32, 48), ("downsample", 80, 0),
    ("inception", 112, 48), ("inception", 96, 64), ("inception", 80, 80), ("inception", 48, 96), ("downsample", 96, 0),
    ("inception", 176, 160), ("inception", 176, 160),
)  # fmt: skip


class InceptionModule(nn.Module):
    """Concatenation of a 1x1 conv branch and a 3x3 conv branch."""

    def __init__(self, c_in: int, c1: int, c3: int, batch_norm: bool) -> None:
        super().__init__()
        self.branch1 = conv_block(c_in, c1, 1, batch_norm)
        self.branch3 = conv_block(c_in, c3, 3, batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x)], dim=1)


class DownsampleModule(nn.Module):
    """Concatenation of a stride-2 3x3 conv and a stride-2 3x3 max-pool (both unpadded)."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool) -> None:
        super().__init__()
        self.conv = conv_block(c_in, c_out, 3, batch_norm, stride=2, padding=0)
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.pool(x)], dim=1)


class InceptionSmall(nn.Module):
    def __init__(self, spec: InceptionSmallSpec) -> None:
        super().__init__()
        bn = spec.batch_norm
        layers: list[nn.Module] = [conv_block(spec.input_shape[0], 96, 3, bn)]
        c = 96
        for kind, a, b in MODULES:
            if kind == "inception":
                layers.append(InceptionModule(c, a, b, bn))
                c = a + b
            else:
                layers.append(DownsampleModule(c, a, bn))
                c = a + c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))
