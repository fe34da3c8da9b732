"""CIFAR ResNets (He et al. 2016, section 4.2): 6n+2 layers, 16/32/64 channels, option-A shortcuts (or pruned widths)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.models.spec import ResNet20Spec


def channel_runs(sources: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """A shortcut's channel map as maximal runs (first source channel, length); -1 starts a run of zeros."""
    runs: list[list[int]] = []
    for source in sources:
        if runs:
            first, length = runs[-1]
            if (source < 0 and first < 0) or (source >= 0 and first >= 0 and first + length == source):
                runs[-1][1] += 1
                continue
        runs.append([max(source, -1), 1])
    return tuple((first, length) for first, length in runs)


def copy_channels(x: torch.Tensor, runs: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """The channels (dim -3) of `x` that `runs` name, zeros where a run says so.

    Slices, zero padding and one concatenation (option A is a single padded slice): no index tensor
    to move to the device, no shape arithmetic that torch.fx could not trace, and no gather, which
    torch.compile's CPU backend (torch 2.13) differentiated wrongly next to a channel pad.
    """
    parts: list[torch.Tensor] = []
    zeros_before = 0
    for first, length in runs:
        if first < 0:
            zeros_before += length
            continue
        parts.append(F.pad(x.narrow(-3, first, length), (0, 0, 0, 0, zeros_before, 0)))
        zeros_before = 0
    if zeros_before or not parts:
        last = parts.pop() if parts else x.narrow(-3, 0, 0)
        parts.append(F.pad(last, (0, 0, 0, 0, 0, zeros_before)))
    return torch.cat(parts, dim=-3) if len(parts) > 1 else parts[0]


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_inner: int, c_out: int, stride: int, sources: tuple[int, ...] | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_inner, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_inner)
        self.conv2 = nn.Conv2d(c_inner, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride = stride
        self.identity = stride == 1 and c_in == c_out and sources is None
        self.runs = None if sources is None else channel_runs(sources)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Subsample and place each input channel where the map says, zeros elsewhere: no parameters."""
        if self.identity:
            return x
        return copy_channels(x[:, :, :: self.stride, :: self.stride], self.runs)

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
