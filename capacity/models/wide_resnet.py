"""Wide residual networks WRN-d-k (Zagoruyko and Komodakis 2016, "Wide Residual Networks", table 1).

Pre-activation basic blocks (He et al. 2016, "Identity Mappings in Deep Residual Networks"): BN and ReLU come
before each conv, so the residual stream is never normalised in place; a stage's first block projects the
pre-activated input with a 1x1 conv when the width changes. Layout and names follow the authors' PyTorch port
(xternalz/WideResNet-pytorch): WRN-28-10 has 36,479,194 parameters for 10 classes (the paper's 36.5M).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.models.projection_resnet import he_init
from effcap.capacity.models.spec import WideResNetSpec
from effcap.capacity.pointwise_conv import subsample


class PreActBlock(nn.Module):
    """x + conv2(dropout(relu(bn2(conv1(relu(bn1(x))))))), or with a projection shortcut(relu(bn1(x)))."""

    def __init__(self, c_in: int, c_inner: int, c_out: int, stride: int, projection: bool, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_inner, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_inner)
        self.conv2 = nn.Conv2d(c_inner, c_out, 3, padding=1, bias=False)
        # A 1x1 conv at stride 1 on the subsampled input (capacity/pointwise_conv.py says why).
        self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False) if projection else None
        self.stride = stride
        # A module, not F.dropout(training=self.training): torch.fx would freeze the mode it was traced in.
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        out = self.conv2(self.dropout(F.relu(self.bn2(self.conv1(activated)))))
        return out + (x if self.shortcut is None else self.shortcut(subsample(activated, self.stride)))


class WideResNet(nn.Module):
    """conv 3x3/16, three stages of (d - 4)/6 blocks (16k, 32k/2, 64k/2 channels), BN, ReLU, average pool, Linear."""

    def __init__(self, spec: WideResNetSpec) -> None:
        super().__init__()
        n, streams, inner = spec.blocks_per_stage, spec.stream_widths(), iter(spec.block_inner_widths())
        self.conv1 = nn.Conv2d(spec.input_shape[0], spec.stem_channels(), 3, padding=1, bias=False)
        c_in = spec.stem_channels()
        for stage, c_out in enumerate(streams):
            blocks = []
            for b in range(n):
                first = b == 0
                stride = 2 if first and stage > 0 else 1
                projection = first and (stage > 0 or spec.stage1_projection)
                blocks.append(PreActBlock(c_in, next(inner), c_out, stride, projection, spec.dropout))
                c_in = c_out
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(c_in)
        self.fc = nn.Linear(c_in, spec.num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(F.relu(self.bn(h)).mean(dim=(2, 3)))
