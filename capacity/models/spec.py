"""Architecture specs: declarative descriptions of a network, so a checkpoint is data, not code.

A spec is a JSON object with a "family" key. It travels in the audit request or in the
checkpoint's safetensors metadata under "effcap.arch".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from effcap.capacity.errors import InputError
from effcap.capacity.graphs.spec import GraphSpec
from effcap.capacity.json_values import check_json_value
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


class ResNetSpec(_ImageSpec):
    """He et al. 2016's BasicBlock ResNets (ResNet-18/34) with projection shortcuts (option B: 1x1 conv + BN)
    wherever a stage starts (stride 2), identity elsewhere.

    `blocks_per_stage` (2, 2, 2, 2) is ResNet-18, (3, 4, 6, 3) ResNet-34. The "cifar" stem is one 3x3 conv
    (the common CIFAR ResNet-18 of kuangliu/pytorch-cifar), "imagenet" the paper's 7x7/2 conv and 3x3/2
    max-pool. Stage s has `width`·2^s channels unless `stage_widths` says otherwise; the stem writes stage 1's
    stream, so it has stage_widths[0] channels. `inner_widths` (each block's first conv, in forward order)
    and `stage_widths` describe structurally pruned networks.
    """

    family: Literal["resnet"] = "resnet"
    blocks_per_stage: tuple[int, ...] = Field(default=(2, 2, 2, 2), min_length=1, max_length=8)
    stem: Literal["cifar", "imagenet"] = "cifar"
    width: int = Field(64, ge=1, le=MAX_WIDTH)
    stage_widths: tuple[int, ...] | None = None
    inner_widths: tuple[int, ...] | None = None

    _check_widths = field_validator("stage_widths", "inner_widths")(
        classmethod(lambda cls, v: v if v is None else _widths(v))
    )

    @field_validator("blocks_per_stage")
    @classmethod
    def _block_counts(cls, blocks: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= b <= 64 for b in blocks):
            raise ValueError("every stage needs 1 to 64 blocks")
        return blocks

    @model_validator(mode="after")
    def _consistent_widths(self) -> ResNetSpec:
        stages, blocks = len(self.blocks_per_stage), sum(self.blocks_per_stage)
        if self.stage_widths is None and self.width << (stages - 1) > MAX_WIDTH:
            raise ValueError(f"width {self.width} doubled over {stages} stages exceeds {MAX_WIDTH} channels")
        if self.stage_widths is not None and len(self.stage_widths) != stages:
            raise ValueError(f"stage_widths needs one width per stage ({stages}), got {len(self.stage_widths)}")
        if self.inner_widths is not None and len(self.inner_widths) != blocks:
            raise ValueError(f"inner_widths needs one width per block ({blocks}), got {len(self.inner_widths)}")
        return self

    def stream_widths(self) -> tuple[int, ...]:
        """Channels of each stage's residual stream."""
        return self.stage_widths or tuple(self.width << s for s in range(len(self.blocks_per_stage)))

    def block_inner_widths(self) -> tuple[int, ...]:
        streams = self.stream_widths()
        return self.inner_widths or tuple(streams[s] for s, n in enumerate(self.blocks_per_stage) for _ in range(n))


class WideResNetSpec(_ImageSpec):
    """WRN-d-k (Zagoruyko and Komodakis 2016): pre-activation basic blocks (BN, ReLU, conv 3x3, BN, ReLU,
    dropout, conv 3x3), (d - 4)/6 blocks in each of 3 stages of 16k, 32k, 64k channels after a 16-channel stem.

    A stage's first block has a 1x1 projection shortcut when its width differs from its input's in the
    published network, i.e. always for stages 2 and 3 (stride 2) and for stage 1 unless k = 1. `stem_width`,
    `stage_widths` and `inner_widths` (each block's first conv) describe structurally pruned networks; the
    shortcut structure stays that of WRN-d-k.
    """

    family: Literal["wide_resnet"] = "wide_resnet"
    depth: int = Field(28, ge=10, le=388)
    widen_factor: int = Field(10, ge=1, le=256)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    stem_width: int | None = Field(None, ge=1, le=MAX_WIDTH)
    stage_widths: tuple[int, int, int] | None = None
    inner_widths: tuple[int, ...] | None = None

    _check_widths = field_validator("stage_widths", "inner_widths")(
        classmethod(lambda cls, v: v if v is None else _widths(v))
    )

    @model_validator(mode="after")
    def _consistent_widths(self) -> WideResNetSpec:
        if (self.depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got {self.depth}")
        blocks = 3 * self.blocks_per_stage
        if self.inner_widths is not None and len(self.inner_widths) != blocks:
            raise ValueError(f"inner_widths needs one width per block ({blocks}), got {len(self.inner_widths)}")
        if self.stage_widths is None and 64 * self.widen_factor > MAX_WIDTH:
            raise ValueError(f"widen_factor {self.widen_factor} makes stage 3 wider than {MAX_WIDTH} channels")
        if not self.stage1_projection and self.stem_channels() != self.stream_widths()[0]:
            raise ValueError("with widen_factor 1 the first shortcut is an identity: stem_width must equal stage_widths[0]")
        return self

    @property
    def blocks_per_stage(self) -> int:
        return (self.depth - 4) // 6

    @property
    def stage1_projection(self) -> bool:
        """Whether stage 1's first block projects its input (16 -> 16k channels in WRN-d-k)."""
        return self.widen_factor != 1

    def stem_channels(self) -> int:
        return self.stem_width or 16

    def stream_widths(self) -> tuple[int, int, int]:
        return self.stage_widths or (16 * self.widen_factor, 32 * self.widen_factor, 64 * self.widen_factor)

    def block_inner_widths(self) -> tuple[int, ...]:
        return self.inner_widths or tuple(w for w in self.stream_widths() for _ in range(self.blocks_per_stage))


VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    # Simonyan and Zisserman 2015, table 1, columns A (11 weight layers) and D (16); "M" is a 2x2 max-pool.
    "11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


class VGGSpec(_ImageSpec):
    """VGG for CIFAR as in kuangliu/pytorch-cifar: conv 3x3 (with bias) [+ BN] + ReLU per number of `config`,
    a 2x2 max-pool per "M", then one Linear from the flattened features (512 on 32x32 inputs) to the classes.

    `config` is "11" or "16" (Simonyan and Zisserman's A and D) or an explicit list such as [16, "M", 32, "M"];
    `width_divisor` divides every conv's channels (at least 1 remains), for narrow test networks.
    """

    family: Literal["vgg"] = "vgg"
    config: Literal["11", "16"] | tuple[int | Literal["M"], ...] = "16"
    batch_norm: bool = True
    width_divisor: int = Field(1, ge=1, le=MAX_WIDTH)

    @field_validator("config")
    @classmethod
    def _channels(cls, config: str | tuple[int | str, ...]) -> str | tuple[int | str, ...]:
        if isinstance(config, str):
            return config
        convs = [c for c in config if c != "M"]
        if not convs or len(config) > 64:
            raise ValueError("needs at least one conv width and at most 64 entries")
        _widths(tuple(convs))
        return config

    def layers(self) -> tuple[int | str, ...]:
        """The conv widths (divided) and "M" pools, in forward order."""
        config = VGG_CONFIGS[self.config] if isinstance(self.config, str) else self.config
        return tuple(c if c == "M" else max(1, c // self.width_divisor) for c in config)


class ViTSpec(_ImageSpec):
    """Vision Transformer (Dosovitskiy et al. 2021): non-overlapping `patch_size` patches embedded by a conv,
    a class token, learned position embeddings, `depth` pre-norm blocks of `heads`-head self-attention and a
    GELU MLP of `mlp_ratio`·dim, a final LayerNorm and a linear head on the class token.

    The defaults are ViT-Ti/16 (5,717,416 parameters on 3x224x224, 1000 classes); dim 384, heads 6 is ViT-S/16.
    """

    family: Literal["vit"] = "vit"
    patch_size: int = Field(16, ge=1, le=1024)
    dim: int = Field(192, ge=1, le=MAX_WIDTH)
    depth: int = Field(12, ge=1, le=64)
    heads: int = Field(3, ge=1, le=1024)
    mlp_ratio: float = Field(4.0, gt=0.0, le=64.0)

    @model_validator(mode="after")
    def _divisible(self) -> ViTSpec:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")
        if self.mlp_hidden < 1:
            raise ValueError(f"mlp_ratio {self.mlp_ratio} leaves no hidden unit at dim {self.dim}")
        _, height, width = self.input_shape
        if height % self.patch_size or width % self.patch_size:
            patch = self.patch_size
            raise ValueError(f"a {height}x{width} input is not a whole number of {patch}x{patch} patches")
        return self

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)  # as timm rounds it


ArchitectureSpec = (
    MLPSpec | LeNet5Spec | SmallCNNSpec | AlexNetSmallSpec | InceptionSmallSpec | ResNet20Spec
    | ResNetSpec | WideResNetSpec | VGGSpec | ViTSpec | GraphSpec
)  # fmt: skip
FAMILIES: dict[str, type[_Spec]] = {
    spec.model_fields["family"].default: spec
    for spec in (
        MLPSpec, LeNet5Spec, SmallCNNSpec, AlexNetSmallSpec, InceptionSmallSpec, ResNet20Spec,
        ResNetSpec, WideResNetSpec, VGGSpec, ViTSpec, GraphSpec,
    )  # fmt: skip
}


def parse_architecture(obj: Any, field: str = "spec.architecture") -> ArchitectureSpec:
    """Validate a JSON-like architecture description; errors name the field inside it."""
    if not isinstance(obj, dict):
        raise InputError(field, "must be a JSON object with a 'family' key", reason="INVALID_SPEC")
    check_json_value(obj, field, reason="INVALID_SPEC")  # NaN/Infinity or absurd nesting, before pydantic sees them
    family = obj.get("family")
    if family not in FAMILIES:
        raise InputError(f"{field}.family", f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}", reason="INVALID_SPEC")
    return validated(FAMILIES[family], obj, field)
