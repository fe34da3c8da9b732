"""K trials folded into one network: the `grouped` strategy.

Instead of vmapping one trial's forward over a trial axis, the K trials become one wide network
whose channels (or features) k·C … (k+1)·C − 1 belong to trial k: convolutions run as one conv
with `groups=K`, Linear layers as one batched matmul, BatchNorm as one BatchNorm over K·C channels
(its statistics stay per trial, because channels never mix), and pooling and activations act per
channel anyway. Example b of the folded batch is example b of each trial's own minibatch, so every
trial keeps its data order. On a GPU this gives cuDNN one large grouped convolution (channels-last
there) instead of vmap's batching rules, which is where the issue's lead measurements saw vmap lose.

Only plain feed-forward families are folded (MLP, LeNet-5, the small CNN); the others keep vmap,
whose per-trial view handles concatenations, residual adds and LRN without re-deriving them.
Parameters and buffers are the vmap strategy's stacked tensors (trial axis first), so both
strategies share the training loop and agree trial for trial.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from effcap.capacity.models.spec import ArchitectureSpec, LeNet5Spec, MLPSpec, SmallCNNSpec

GROUPED_FAMILIES = ("mlp", "lenet5", "small_cnn")
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu}
# PyTorch's BatchNorm defaults, which every family here uses.
BN_MOMENTUM, BN_EPS = 0.1, 1e-5

# (stacked params, stacked buffers, inputs (K, B, ...), training) -> logits (K, B, classes)
GroupedForward = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor, bool], torch.Tensor]


def grouped_forward(architecture: ArchitectureSpec, channels_last: bool = False) -> GroupedForward | None:
    """The folded forward pass for `architecture`, or None where the family is not folded."""
    if isinstance(architecture, MLPSpec):
        return _mlp(architecture)
    if isinstance(architecture, SmallCNNSpec):
        return _small_cnn(architecture, channels_last)
    if isinstance(architecture, LeNet5Spec):
        return _lenet5(channels_last)
    return None


def _linear(params: dict[str, torch.Tensor], prefix: str, h: torch.Tensor) -> torch.Tensor:
    """(K, B, in) → (K, B, out) with each trial's own weight."""
    out = torch.bmm(h, params[f"{prefix}.weight"].transpose(1, 2))
    bias = params.get(f"{prefix}.bias")
    return out if bias is None else out + bias[:, None, :]


def _fold(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """(K, B, C, H, W) → (B, K·C, H, W): trial k's channels side by side."""
    k, b, c, h, w = x.shape
    folded = x.transpose(0, 1).reshape(b, k * c, h, w)
    return folded.contiguous(memory_format=torch.channels_last) if channels_last else folded


def _unfold(h: torch.Tensor, k: int) -> torch.Tensor:
    """(B, K·C, ...) → (K, B, C·...): each trial's features, flattened like nn.Flatten."""
    return h.reshape(h.shape[0], k, -1).transpose(0, 1)


def _conv(params: dict[str, torch.Tensor], prefix: str, h: torch.Tensor, k: int, padding: int | str) -> torch.Tensor:
    weight = params[f"{prefix}.weight"]
    bias = params.get(f"{prefix}.bias")
    return F.conv2d(h, weight.flatten(0, 1), None if bias is None else bias.flatten(), padding=padding, groups=k)


def _batch_norm(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], prefix: str, h: torch.Tensor, training: bool) -> torch.Tensor:
    # The (K, C) running statistics are viewed as K·C channels, so training updates them in place.
    mean, var = buffers[f"{prefix}.running_mean"].view(-1), buffers[f"{prefix}.running_var"].view(-1)
    if training:
        buffers[f"{prefix}.num_batches_tracked"].add_(1)  # as nn.BatchNorm counts, though fixed momentum never reads it
    return F.batch_norm(h, mean, var, params[f"{prefix}.weight"].flatten(), params[f"{prefix}.bias"].flatten(), training, BN_MOMENTUM, BN_EPS)


def _mlp(spec: MLPSpec) -> GroupedForward:
    activation = ACTIVATIONS[spec.activation]

    def forward(params, buffers, x, training):
        h = x.flatten(2)
        for layer in range(len(spec.hidden_sizes)):
            h = activation(_linear(params, f"hidden.{layer}", h))
        return _linear(params, "head", h)

    return forward


def _small_cnn(spec: SmallCNNSpec, channels_last: bool) -> GroupedForward:
    def forward(params, buffers, x, training):
        k = x.shape[0]
        h = _fold(x, channels_last)
        for i in range(len(spec.channels)):
            h = _conv(params, f"features.{2 * i}.0", h, k, "same")
            if spec.batch_norm:
                h = _batch_norm(params, buffers, f"features.{2 * i}.1", h, training)
            h = F.relu(h)
            if i < len(spec.channels) - 1:
                h = F.max_pool2d(h, 2)
        return _linear(params, "head", _unfold(h.mean(dim=(2, 3)), k))

    return forward


def _lenet5(channels_last: bool) -> GroupedForward:
    def forward(params, buffers, x, training):
        k = x.shape[0]
        h = F.max_pool2d(F.relu(_conv(params, "features.0", _fold(x, channels_last), k, 2)), 2)
        h = F.max_pool2d(F.relu(_conv(params, "features.3", h, k, 0)), 2)
        h = F.relu(_linear(params, "classifier.1", _unfold(h, k)))
        h = F.relu(_linear(params, "classifier.3", h))
        return _linear(params, "classifier.5", h)

    return forward
