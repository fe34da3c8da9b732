"""Architecture specs: declarative descriptions of a network, so a checkpoint is data, not code.

A spec is a JSON object with a "family" key. It travels in the audit request or in the
checkpoint's safetensors metadata under "effcap.arch".
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from effcap.capacity.errors import InputError
from effcap.capacity.validation import validated

MAX_INPUT_ELEMENTS = 1 << 24  # 16M input coordinates: far beyond any audit we can train
MAX_WIDTH = 1 << 16


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_shape: tuple[int, ...] = Field(min_length=1, max_length=4)
    num_classes: int = Field(ge=1, le=100_000)

    @field_validator("input_shape")
    @classmethod
    def _positive_bounded_input(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 for d in shape):
            raise ValueError("every dimension must be at least 1")
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            raise ValueError(f"at most {MAX_INPUT_ELEMENTS} input elements")
        return shape


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
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling; the first conv pads by 2 as for 28x28 MNIST."""

    family: Literal["lenet5"] = "lenet5"


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


class InceptionSmallSpec(_ImageSpec):
    """Zhang et al.'s small Inception (appendix, figure 3); every conv is followed by BatchNorm unless disabled."""

    family: Literal["inception_small"] = "inception_small"
    batch_norm: bool = True


class ResNet20Spec(_ImageSpec):
    """CIFAR ResNet (He et al. 2016, section 4.2): 3 stages of `blocks_per_stage` basic blocks, 16/32/64 channels,
    parameter-free (zero-padded identity) shortcuts; blocks_per_stage 3 is ResNet-20, 9 is ResNet-56."""

    family: Literal["resnet20"] = "resnet20"
    blocks_per_stage: int = Field(3, ge=1, le=64)


ArchitectureSpec = MLPSpec | LeNet5Spec | SmallCNNSpec | AlexNetSmallSpec | InceptionSmallSpec | ResNet20Spec
FAMILIES: dict[str, type[_Spec]] = {
    spec.model_fields["family"].default: spec
    for spec in (MLPSpec, LeNet5Spec, SmallCNNSpec, AlexNetSmallSpec, InceptionSmallSpec, ResNet20Spec)
}


def parse_architecture(obj: Any, field: str = "spec.architecture") -> ArchitectureSpec:
    """Validate a JSON-like architecture description; errors name the field inside it."""
    if not isinstance(obj, dict):
        raise InputError(field, "must be a JSON object with a 'family' key", reason="INVALID_SPEC")
    family = obj.get("family")
    if family not in FAMILIES:
        raise InputError(f"{field}.family", f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}", reason="INVALID_SPEC")
    return validated(FAMILIES[family], obj, field)
