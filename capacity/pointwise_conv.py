"""1x1 convolutions with a stride, computed so that torch's faulty CPU kernel is never used.

torch 2.13's CPU (oneDNN) channels-last kernel returns a wrong weight gradient for a 1x1 convolution
with stride 2 on inputs of 2-7 channels (40-55% off on 8x8 maps), and on one thread its backward can
crash the process (docs/decisions.md). ResNet projection shortcuts are exactly such layers in the
narrow networks audits train on CPUs, and effcap runs convolutions channels-last. A 1x1 convolution
with stride s is the stride-1 convolution of the input subsampled by s: the built-in ResNets compute
their shortcuts that way (`subsample`, then a 1x1 conv), and an imported graph's strided 1x1 convs
are modules that do it inside (`convolution`), keeping their stride, parameters and torch Conv class
for every measure.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_CONVS = {1: (nn.Conv1d, F.conv1d), 2: (nn.Conv2d, F.conv2d), 3: (nn.Conv3d, F.conv3d)}


def subsample(x: torch.Tensor, stride: int | tuple[int, ...]) -> torch.Tensor:
    """Every `stride`-th position along each spatial axis: what a 1x1 conv with that stride reads. An int
    strides both axes of a 2-D map; a tuple gives one stride per spatial axis. (No shape is read, so torch.fx
    can trace it.)"""
    strides = (stride, stride) if isinstance(stride, int) else tuple(stride)
    if all(s == 1 for s in strides):
        return x
    return x[(slice(None), slice(None), *(slice(None, None, s) for s in strides))]


def _subsampled(base: type[nn.Module], conv) -> type[nn.Module]:
    class SubsampledPointwise(base):
        def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
            return conv(subsample(input, self.stride), weight, bias, 1, 0, 1, self.groups)

    SubsampledPointwise.__name__ = SubsampledPointwise.__qualname__ = f"SubsampledPointwise{base.__name__}"
    return SubsampledPointwise


SUBSAMPLED_POINTWISE = {dims: _subsampled(base, conv) for dims, (base, conv) in _CONVS.items()}


def convolution(
    dims: int, c_in: int, c_out: int, kernel, stride=1, padding=0, dilation=1, groups: int = 1, bias: bool = True
) -> nn.Module:
    """torch's Conv{dims}d, or for an unpadded strided 1x1 kernel the subsampling equivalent above."""
    spread = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v,) * dims  # noqa: E731
    if all(k == 1 for k in spread(kernel)) and any(s > 1 for s in spread(stride)) and not any(spread(padding)):
        return SUBSAMPLED_POINTWISE[dims](c_in, c_out, kernel, stride, 0, dilation, groups, bias)
    return _CONVS[dims][0](c_in, c_out, kernel, stride, padding, dilation, groups, bias)
