"""CIFAR ResNets (He et al. 2016, section 4.2): 6n+2 layers, 16/32/64 channels, option-A shortcuts (or pruned widths)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.models.spec import ResNet20Spec, option_a_sources


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_inner: int, c_out: int, stride: int, sources: tuple[int, ...] | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_inner, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_inner)
        self.conv2 = nn.Conv2d(c_inner, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride = stride
        self.identity = stride == 1 and c_in == c_out and sources is None
        # Option A's map is a contiguous zero padding (one F.pad); any other map is a gather.
        before = (c_out - c_in) // 2
        self.padding = (0, 0, 0, 0, before, c_out - c_in - before) if c_out >= c_in and sources == option_a_sources(c_in, c_out) else None
        self.sources = sources

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Subsample and place each input channel where the map says, zeros elsewhere: no parameters."""
        if self.identity:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        if self.padding is not None:
            return F.pad(x, self.padding)
        padded = F.pad(x, (0, 0, 0, 0, 0, 1))  # channel -1 reads this zero channel
        return padded.index_select(1, torch.tensor(self.sources, device=x.device) % padded.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, spec: ResNet20Spec) -> None:
        super().__init__()
        widths, inner, maps = spec.stage_widths, spec.block_inner_widths(), spec.shortcut_maps()
        self.stem = nn.Sequential(nn.Conv2d(spec.input_shape[0], widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for stage, c_out in enumerate(widths):
            for i in range(spec.blocks_per_stage):
                downsample = stage > 0 and i == 0
                sources = maps[stage - 1] if downsample else None
                blocks.append(BasicBlock(c_in, inner[len(blocks)], c_out, stride=2 if downsample else 1, sources=sources))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(widths[-1], spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))
