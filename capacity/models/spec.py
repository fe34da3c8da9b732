"""Architecture specs: declarative descriptions of a network, so a checkpoint is data, not code.

A spec is a JSON object with a "family" key. It travels in the audit request or in the
checkpoint's safetensors metadata under "effcap.arch".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from effcap.capacity.errors import InputError
from effcap.capacity.graphs.spec import GraphSpec
from effcap.capacity.spec_base import SpecBase as _Spec
from effcap.capacity.validation import validated

MAX_WIDTH = 1 << 16


class _ImageSpec(_Spec):
    """Convolutional families take (channels, height, width) inputs."""

    input_shape: tuple[int, int, int]


def _widths(sizes: tuple[int, ...]) -> tuple[int, ...]:
    if any(not 1 <= w <= MAX_WIDTH for w in sizes):
        raise ValueError(f"every width must be in [1, {MAX_WIDTH}]")
    return sizes


class MLPSpec(_Spec):
    """Fully connected network on flattened inputs (Zhang et al.'s MLP 1x512 and 3x512)."""

    family: Literal["mlp"] = "mlp"
    hidden_sizes: tuple[int, ...] = Field(default=(512,), max_length=64)
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    bias: bool = True

    _check_widths = field_validator("hidden_sizes")(classmethod(lambda cls, v: _widths(v)))


class LeNet5Spec(_ImageSpec):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling; the first conv pads by 2 as for 28x28 MNIST.

    The widths default to the original's; other values describe structurally pruned LeNets."""

    family: Literal["lenet5"] = "lenet5"
    conv_channels: tuple[int, int] = (6, 16)
    fc_sizes: tuple[int, int] = (120, 84)

    _check_widths = field_validator("conv_channels", "fc_sizes")(classmethod(lambda cls, v: _widths(v)))


class SmallCNNSpec(_ImageSpec):
    """conv3x3 blocks (ReLU, 2x2 max-pool after all but the last), global average pool, linear head."""

    family: Literal["small_cnn"] = "small_cnn"
    channels: tuple[int, ...] = Field(default=(64, 128, 128), min_length=1, max_length=16)
    batch_norm: bool = False

    _check_widths = field_validator("channels")(classmethod(lambda cls, v: _widths(v)))


class AlexNetSmallSpec(_ImageSpec):
    """Zhang et al.'s small AlexNet: two (conv5x5/64, max-pool 3x3/2 SAME, LRN) blocks, FC 384, 192."""

    family: Literal["alexnet_small"] = "alexnet_small"
    batch_norm: bool = False
    conv_channels: tuple[int, int] = (64, 64)
    fc_sizes: tuple[int, int] = (384, 192)

    _check_widths = field_validator("conv_channels", "fc_sizes")(classmethod(lambda cls, v: _widths(v)))


# Output channels of the small Inception's 19 convs in forward order: the stem, then each module's
# 1x1 and 3x3 branches, or a downsample module's one conv (Zhang et al., figure 3).
INCEPTION_SMALL_WIDTHS = (96, 32, 32, 32, 48, 80, 112, 48, 96, 64, 80, 80, 48, 96, 96, 176, 160, 176, 160)


class InceptionSmallSpec(_ImageSpec):
    """Zhang et al.'s small Inception (appendix, figure 3); every conv is followed by BatchNorm unless disabled.

    `conv_widths` defaults to the paper's; other values describe structurally pruned networks."""

    family: Literal["inception_small"] = "inception_small"
    batch_norm: bool = True
    conv_widths: tuple[int, ...] = Field(default=INCEPTION_SMALL_WIDTHS, min_length=len(INCEPTION_SMALL_WIDTHS), max_length=len(INCEPTION_SMALL_WIDTHS))

    _check_widths = field_validator("conv_widths")(classmethod(lambda cls, v: _widths(v)))


def option_a_sources(width_in: int, width_out: int) -> tuple[int, ...]:
    """He et al.'s option-A shortcut as a channel map: the input's channels in the middle, zeros (-1) around."""
    before = (width_out - width_in) // 2
    return tuple(i - before if 0 <= i - before < width_in else -1 for i in range(width_out))


class ResNet20Spec(_ImageSpec):
    """CIFAR ResNet (He et al. 2016, section 4.2): 3 stages of `blocks_per_stage` basic blocks, 16/32/64 channels,
    parameter-free (zero-padded identity) shortcuts; blocks_per_stage 3 is ResNet-20, 9 is ResNet-56.

    Structurally pruned ResNets have other `stage_widths` (the residual streams), `inner_widths` (each
    block's first conv) and `shortcut_sources`: for each downsampling shortcut, which input channel
    each output channel copies (-1: none). By default the shortcuts are option A's zero padding."""

    family: Literal["resnet20"] = "resnet20"
    blocks_per_stage: int = Field(3, ge=1, le=64)
    stage_widths: tuple[int, int, int] = (16, 32, 64)
    inner_widths: tuple[int, ...] | None = None
    shortcut_sources: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    _check_widths = field_validator("stage_widths", "inner_widths")(classmethod(lambda cls, v: v if v is None else _widths(v)))

    @model_validator(mode="after")
    def _consistent_widths(self) -> ResNet20Spec:
        blocks = 3 * self.blocks_per_stage
        if self.inner_widths is not None and len(self.inner_widths) != blocks:
            raise ValueError(f"inner_widths needs one width per block ({blocks}), got {len(self.inner_widths)}")
        if self.shortcut_sources is None:
            if list(self.stage_widths) != sorted(self.stage_widths):
                raise ValueError("option-A shortcuts need non-decreasing stage_widths; give shortcut_sources otherwise")
            return self
        for stage, sources in enumerate(self.shortcut_sources):
            width_in, width_out = self.stage_widths[stage], self.stage_widths[stage + 1]
            if len(sources) != width_out or any(not -1 <= s < width_in for s in sources):
                raise ValueError(f"shortcut_sources[{stage}] needs {width_out} entries in [-1, {width_in})")
        return self

    def block_inner_widths(self) -> tuple[int, ...]:
        return self.inner_widths or tuple(w for w in self.stage_widths for _ in range(self.blocks_per_stage))

    def shortcut_maps(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if self.shortcut_sources is not None:
            return self.shortcut_sources
        w = self.stage_widths
        return option_a_sources(w[0], w[1]), option_a_sources(w[1], w[2])


ArchitectureSpec = (
    MLPSpec | LeNet5Spec | SmallCNNSpec | AlexNetSmallSpec | InceptionSmallSpec | ResNet20Spec | GraphSpec
)
FAMILIES: dict[str, type[_Spec]] = {
    spec.model_fields["family"].default: spec
    for spec in (MLPSpec, LeNet5Spec, SmallCNNSpec, AlexNetSmallSpec, InceptionSmallSpec, ResNet20Spec, GraphSpec)
}


def parse_architecture(obj: Any, field: str = "spec.architecture") -> ArchitectureSpec:
    """Validate a JSON-like architecture description; errors name the field inside it."""
    if not isinstance(obj, dict):
        raise InputError(field, "must be a JSON object with a 'family' key", reason="INVALID_SPEC")
    family = obj.get("family")
    if family not in FAMILIES:
        raise InputError(f"{field}.family", f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}", reason="INVALID_SPEC")
    return validated(FAMILIES[family], obj, field)
