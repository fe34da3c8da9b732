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

# After the stem conv; the widths come from the spec's conv_widths (INCEPTION_SMALL_WIDTHS by default).
MODULE_KINDS = ("inception", "inception", "downsample", "inception", "inception", "inception", "inception", "downsample", "inception", "inception")


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
        bn, widths = spec.batch_norm, iter(spec.conv_widths)
        c = next(widths)
        layers: list[nn.Module] = [conv_block(spec.input_shape[0], c, 3, bn)]
        for kind in MODULE_KINDS:
            if kind == "inception":
                c1, c3 = next(widths), next(widths)
                layers.append(InceptionModule(c, c1, c3, bn))
                c = c1 + c3
            else:
                c_conv = next(widths)
                layers.append(DownsampleModule(c, c_conv, bn))
                c = c_conv + c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))
