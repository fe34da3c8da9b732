"""Strided 1x1 convolutions train correctly channels-last on the CPU (torch 2.13's own kernel does not)."""

import pytest
import torch
from torch import nn

from effcap.capacity.pointwise_conv import convolution


@pytest.mark.parametrize("channels_in", [2, 4, 7, 16])
def test_a_strided_pointwise_conv_has_nchws_gradients_when_channels_last(channels_in):
    """Reference: torch's Conv2d in NCHW. torch's channels-last kernel is 40-55% off for 2-7 input channels."""
    torch.manual_seed(0)
    reference = nn.Conv2d(channels_in, 8, 1, stride=2, bias=True)
    ours = convolution(2, channels_in, 8, 1, stride=2)
    ours.load_state_dict(reference.state_dict())
    assert isinstance(ours, nn.Conv2d) and ours.stride == (2, 2)
    ours = ours.to(memory_format=torch.channels_last)
    x = torch.randn(16, channels_in, 8, 8)
    expected = torch.autograd.grad((reference(x) ** 2).sum(), list(reference.parameters()))
    got = torch.autograd.grad(
        (ours(x.contiguous(memory_format=torch.channels_last)) ** 2).sum(), list(ours.parameters())
    )
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_other_convolutions_stay_torchs_own():
    assert type(convolution(2, 4, 8, 3, stride=2, padding=1)) is nn.Conv2d
    assert type(convolution(2, 4, 8, 1)) is nn.Conv2d
    assert type(convolution(2, 4, 8, 1, stride=2, padding=1)) is nn.Conv2d  # padded: not a subsampling
