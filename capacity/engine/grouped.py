"""K trials folded into one network: the `grouped` strategy.

Instead of vmapping one trial's forward over a trial axis, the K trials become one wide network
whose channels (or features) k·C … (k+1)·C − 1 belong to trial k: convolutions run as one conv
with `groups=K`, Linear layers as one batched matmul, BatchNorm as one BatchNorm over K·C channels
(its statistics stay per trial, because channels never mix), and pooling and activations act per
channel anyway. The few operations that mix channels — concatenations, the residual shortcut's
channel padding, LRN across channels, flattening — run on a per-trial view (B, K, C, …). Example b
of the folded batch is example b of each trial's own minibatch, so every trial keeps its data
order. On a GPU this gives cuDNN one large grouped convolution (channels-last, as on the CPU)
instead of vmap's batching rules, which is where the issue's lead measurements saw vmap lose.

Not every family folds: `folds` says which do, and the engine offers `grouped` only to those. The ViT is
left to vmap by choice (its token-wise Linear layers are the batched matmuls vmap already makes).

Parameters and buffers are the vmap strategy's stacked tensors (trial axis first), so both
strategies share the training loop and agree trial for trial (tests/unit/test_engine.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from effcap.capacity.models.inception import MODULE_KINDS
from effcap.capacity.models.resnet import channel_runs, copy_channels
from effcap.capacity.models.spec import (
    AlexNetSmallSpec,
    ArchitectureSpec,
    InceptionSmallSpec,
    LeNet5Spec,
    MLPSpec,
    ResNet20Spec,
    ResNetSpec,
    SmallCNNSpec,
    VGGSpec,
    WideResNetSpec,
)
from effcap.capacity.models.vgg import feature_indices
from effcap.capacity.pointwise_conv import subsample

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu}
# PyTorch's BatchNorm defaults, which every family here uses.
BN_MOMENTUM, BN_EPS = 0.1, 1e-5

# (stacked params, stacked buffers, inputs, training, shared) -> logits (K, B, classes). Inputs are
# (K, B, ...), one batch per trial, or with shared=True one batch (B, ...) that every trial sees:
# then the first layer reads it once for all K trials instead of from K copies.
GroupedForward = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor, bool, bool], torch.Tensor]


def folds(architecture: ArchitectureSpec) -> bool:
    """Whether `architecture`'s family has a folded forward pass, i.e. can run under the `grouped` strategies.

    The engine asks this, and only this, before offering `grouped`: a family without a fold (the ViT, left to
    vmap by choice, or a user's layer graph) is stacked with vmap instead.
    """
    return architecture.family in _FOLDED_FORWARDS


def grouped_forward(architecture: ArchitectureSpec, channels_last: bool = False) -> GroupedForward:
    """The folded forward pass for `architecture`; ValueError for a family that does not fold (see `folds`)."""
    if not folds(architecture):
        raise ValueError(f"no folded forward for family {architecture.family}")
    return _FOLDED_FORWARDS[architecture.family](architecture, channels_last)


def _linear(params: dict[str, torch.Tensor], prefix: str, h: torch.Tensor) -> torch.Tensor:
    """(K, B, in), or (B, in) shared by all trials, → (K, B, out) with each trial's own weight."""
    out = torch.matmul(h, params[f"{prefix}.weight"].transpose(1, 2))
    bias = params.get(f"{prefix}.bias")
    return out if bias is None else out + bias[:, None, :]


def _trials(params: dict[str, torch.Tensor]) -> int:
    return next(iter(params.values())).shape[0]


def _fold(x: torch.Tensor, channels_last: bool, shared: bool) -> torch.Tensor:
    """(K, B, C, H, W) → (B, K·C, H, W): trial k's channels side by side. Shared inputs (B, C, H, W)
    stay as they are: the first convolution reads them with all K trials' filters at once."""
    if not shared:
        k, b, c, h, w = x.shape
        x = x.transpose(0, 1).reshape(b, k * c, h, w)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _unfold(h: torch.Tensor, k: int) -> torch.Tensor:
    """(B, K·C, ...) → (K, B, C·...): each trial's features, flattened like nn.Flatten."""
    return h.reshape(h.shape[0], k, -1).transpose(0, 1)


def _per_trial(h: torch.Tensor, k: int) -> torch.Tensor:
    """(B, K·C, H, W) → (B, K, C, H, W)."""
    return h.reshape(h.shape[0], k, h.shape[1] // k, *h.shape[2:])


def _cat_per_trial(parts: list[torch.Tensor], k: int) -> torch.Tensor:
    """Each trial's channels of `parts` concatenated in order, as torch.cat(dim=1) does for one trial.

    Channels-last inputs are joined in their own memory order (B, H, W, K, C), so the result stays
    channels-last for the next convolution instead of falling back to NCHW.
    """
    if parts[0].is_contiguous(memory_format=torch.channels_last) and not parts[0].is_contiguous():
        b, _, h, w = parts[0].shape
        joined = torch.cat([p.permute(0, 2, 3, 1).reshape(b, h, w, k, -1) for p in parts], dim=4)
        return joined.reshape(b, h, w, -1).permute(0, 3, 1, 2)
    joined = torch.cat([_per_trial(p, k) for p in parts], dim=2)
    return joined.reshape(joined.shape[0], -1, *joined.shape[3:])


def _conv(params: dict[str, torch.Tensor], prefix: str, h: torch.Tensor, padding: int | str, stride: int = 1) -> torch.Tensor:
    """Trial k's filters read trial k's channels (groups=K); on shared inputs every filter reads them all."""
    weight = params[f"{prefix}.weight"]
    bias = params.get(f"{prefix}.bias")
    groups = h.shape[1] // weight.shape[2]
    return F.conv2d(h, weight.flatten(0, 1), None if bias is None else bias.flatten(), stride=stride, padding=padding, groups=groups)


def _batch_norm(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], prefix: str, h: torch.Tensor, training: bool) -> torch.Tensor:
    # The (K, C) running statistics are viewed as K·C channels, so training updates them in place.
    mean, var = buffers[f"{prefix}.running_mean"].view(-1), buffers[f"{prefix}.running_var"].view(-1)
    if training:
        buffers[f"{prefix}.num_batches_tracked"].add_(1)  # as nn.BatchNorm counts, though fixed momentum never reads it
    return F.batch_norm(h, mean, var, params[f"{prefix}.weight"].flatten(), params[f"{prefix}.bias"].flatten(), training, BN_MOMENTUM, BN_EPS)


def _mlp(spec: MLPSpec, channels_last: bool) -> GroupedForward:
    activation = ACTIVATIONS[spec.activation]

    def forward(params, buffers, x, training, shared):
        h = x.flatten(1 if shared else 2)
        for layer in range(len(spec.hidden_sizes)):
            h = activation(_linear(params, f"hidden.{layer}", h))
        return _linear(params, "head", h)

    return forward


def _small_cnn(spec: SmallCNNSpec, channels_last: bool) -> GroupedForward:
    def forward(params, buffers, x, training, shared):
        k = _trials(params)
        h = _fold(x, channels_last, shared)
        for i in range(len(spec.channels)):
            h = _conv(params, f"features.{2 * i}.0", h, "same")
            if spec.batch_norm:
                h = _batch_norm(params, buffers, f"features.{2 * i}.1", h, training)
            h = F.relu(h)
            if i < len(spec.channels) - 1:
                h = F.max_pool2d(h, 2)
        return _linear(params, "head", _unfold(h.mean(dim=(2, 3)), k))

    return forward


def _lenet5(spec: LeNet5Spec, channels_last: bool) -> GroupedForward:
    def forward(params, buffers, x, training, shared):
        k = _trials(params)
        h = F.max_pool2d(F.relu(_conv(params, "features.0", _fold(x, channels_last, shared), 2)), 2)
        h = F.max_pool2d(F.relu(_conv(params, "features.3", h, 0)), 2)
        h = F.relu(_linear(params, "classifier.1", _unfold(h, k)))
        h = F.relu(_linear(params, "classifier.3", h))
        return _linear(params, "classifier.5", h)

    return forward


def _conv_block(params, buffers, prefix: str, h: torch.Tensor, batch_norm: bool, training: bool, padding: int | str = "same", stride: int = 1) -> torch.Tensor:
    """models.convnets.conv_block: conv, optional BatchNorm, ReLU."""
    h = _conv(params, f"{prefix}.0", h, padding, stride)
    if batch_norm:
        h = _batch_norm(params, buffers, f"{prefix}.1", h, training)
    return F.relu(h)


def _alexnet_small(spec: AlexNetSmallSpec, channels_last: bool) -> GroupedForward:
    def forward(params, buffers, x, training, shared):
        k = _trials(params)
        h = _fold(x, channels_last, shared)
        for i in range(2):
            h = F.max_pool2d(_conv_block(params, buffers, f"features.{i}.0", h, spec.batch_norm, training), 3, 2, padding=1)
            # LRN mixes neighbouring channels, so it runs on each trial's channels alone.
            b, _, height, width = h.shape
            h = F.local_response_norm(h.reshape(b * k, -1, height, width), 9, alpha=1e-3, beta=0.75, k=1.0).reshape(b, -1, height, width)
            h = h.contiguous(memory_format=torch.channels_last) if channels_last else h
        h = F.relu(_linear(params, "classifier.1", _unfold(h, k)))
        h = F.relu(_linear(params, "classifier.3", h))
        return _linear(params, "classifier.5", h)

    return forward


def _inception_small(spec: InceptionSmallSpec, channels_last: bool) -> GroupedForward:
    bn = spec.batch_norm

    def forward(params, buffers, x, training, shared):
        k = _trials(params)
        h = _conv_block(params, buffers, "features.0", _fold(x, channels_last, shared), bn, training)
        for index, kind in enumerate(MODULE_KINDS, start=1):
            module = f"features.{index}"
            if kind == "inception":
                branches = [_conv_block(params, buffers, f"{module}.branch{size}", h, bn, training) for size in (1, 3)]
            else:
                branches = [_conv_block(params, buffers, f"{module}.conv", h, bn, training, padding=0, stride=2), F.max_pool2d(h, 3, 2)]
            h = _cat_per_trial(branches, k)
        return _linear(params, "head", _unfold(h.mean(dim=(2, 3)), k))

    return forward


def _resnet(spec: ResNet20Spec, channels_last: bool) -> GroupedForward:
    n = spec.blocks_per_stage
    runs = [channel_runs(m) for m in spec.shortcut_maps()]

    def shortcut(h: torch.Tensor, k: int, stage: int) -> torch.Tensor:
        """Subsample, then each trial's output channel c copies input channel sources[c] (-1: zero)."""
        picked = copy_channels(_per_trial(h[:, :, ::2, ::2], k), runs[stage - 1])
        return picked.reshape(picked.shape[0], -1, *picked.shape[3:])

    def forward(params, buffers, x, training, shared):
        k = _trials(params)
        stem = _conv(params, "stem.0", _fold(x, channels_last, shared), 1)
        h = F.relu(_batch_norm(params, buffers, "stem.1", stem, training))
        for block in range(3 * n):
            stage, downsample = block // n, block // n > 0 and block % n == 0
            prefix = f"blocks.{block}"
            out = _conv(params, f"{prefix}.conv1", h, 1, stride=2 if downsample else 1)
            out = F.relu(_batch_norm(params, buffers, f"{prefix}.bn1", out, training))
            out = _batch_norm(params, buffers, f"{prefix}.bn2", _conv(params, f"{prefix}.conv2", out, 1), training)
            h = F.relu(out + (shortcut(h, k, stage) if downsample else h))
        return _linear(params, "head", _unfold(h.mean(dim=(2, 3)), k))

    return forward


def _vgg(spec: VGGSpec, channels_last: bool) -> GroupedForward:
    """models.vgg.VGG: conv (bias), optional BN, ReLU per width; 2x2 max-pool per "M"; one Linear."""
    layers = feature_indices(spec)

    def forward(params, buffers, x, training, shared):
        k = _trials(params)
        h = _fold(x, channels_last, shared)
        for layer, index in layers:
            if layer == "M":
                h = F.max_pool2d(h, 2, 2)
                continue
            h = _conv(params, f"features.{index}", h, 1)
            if spec.batch_norm:
                h = _batch_norm(params, buffers, f"features.{index + 1}", h, training)
            h = F.relu(h)
        return _linear(params, "classifier", _unfold(h, k))

    return forward


def _projection_resnet(spec: ResNetSpec, channels_last: bool) -> GroupedForward:
    """models.projection_resnet.ResNet: a projection shortcut is one more grouped conv and BN, so the
    residual add needs no per-trial view at all (unlike option A's channel copies)."""
    blocks = [(f"layer{s + 1}.{b}", s > 0 and b == 0) for s, n in enumerate(spec.blocks_per_stage) for b in range(n)]
    imagenet_stem = spec.stem == "imagenet"  # conv 7x7/2 (padding 3) and a 3x3/2 max-pool, else conv 3x3/1
    stem_stride, stem_padding = (2, 3) if imagenet_stem else (1, 1)

    def forward(params, buffers, x, training, shared):
        k = _trials(params)
        h = _conv(params, "conv1", _fold(x, channels_last, shared), stem_padding, stride=stem_stride)
        h = F.relu(_batch_norm(params, buffers, "bn1", h, training))
        if imagenet_stem:
            h = F.max_pool2d(h, 3, 2, padding=1)
        for prefix, downsample in blocks:
            stride = 2 if downsample else 1
            out = _conv(params, f"{prefix}.conv1", h, 1, stride)
            out = F.relu(_batch_norm(params, buffers, f"{prefix}.bn1", out, training))
            out = _batch_norm(params, buffers, f"{prefix}.bn2", _conv(params, f"{prefix}.conv2", out, 1), training)
            if downsample:
                h = _conv(params, f"{prefix}.downsample.0", subsample(h, stride), 0)
                h = _batch_norm(params, buffers, f"{prefix}.downsample.1", h, training)
            h = F.relu(out + h)
        return _linear(params, "fc", _unfold(h.mean(dim=(2, 3)), k))

    return forward


def _wide_resnet(spec: WideResNetSpec, channels_last: bool) -> GroupedForward:
    """models.wide_resnet.WideResNet: pre-activation blocks; dropout acts elementwise, so on the folded
    activations it drops each trial's units independently, as vmap's randomness="different" does."""
    blocks = [
        (f"layer{s + 1}.{b}", 2 if s > 0 and b == 0 else 1, b == 0 and (s > 0 or spec.stage1_projection))
        for s in range(3)
        for b in range(spec.blocks_per_stage)
    ]  # (prefix, stride, whether the shortcut projects)

    def forward(params, buffers, x, training, shared):
        k = _trials(params)
        h = _conv(params, "conv1", _fold(x, channels_last, shared), 1)
        for prefix, stride, projection in blocks:
            activated = F.relu(_batch_norm(params, buffers, f"{prefix}.bn1", h, training))
            out = _conv(params, f"{prefix}.conv1", activated, 1, stride)
            out = F.relu(_batch_norm(params, buffers, f"{prefix}.bn2", out, training))
            if spec.dropout:
                out = F.dropout(out, spec.dropout, training)
            out = _conv(params, f"{prefix}.conv2", out, 1)
            h = out + (_conv(params, f"{prefix}.shortcut", subsample(activated, stride), 0) if projection else h)
        h = F.relu(_batch_norm(params, buffers, "bn", h, training))
        return _linear(params, "fc", _unfold(h.mean(dim=(2, 3)), k))

    return forward


# family -> folded forward builder (spec, channels_last). `folds` reads this table, so a family is offered
# the grouped strategies exactly when it has an entry here.
_FOLDED_FORWARDS: dict[str, Callable[[ArchitectureSpec, bool], GroupedForward]] = {
    "mlp": _mlp,
    "small_cnn": _small_cnn,
    "lenet5": _lenet5,
    "alexnet_small": _alexnet_small,
    "inception_small": _inception_small,
    "resnet20": _resnet,
    "vgg": _vgg,
    "resnet": _projection_resnet,
    "wide_resnet": _wide_resnet,
}
