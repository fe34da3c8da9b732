"""Layer ops: the graph's parameterised operators, each one torch module of the standard kind.

Using torch's own Conv/Linear/BatchNorm/LayerNorm modules is what lets an imported network be
measured like a built-in one: the norm measures find nn.Conv2d layers with their real stride,
padding, dilation and groups; compression prunes their weights; a fresh network is initialised by
each module's own reset_parameters, which is PyTorch's default per layer type (Kaiming-uniform
weights and uniform biases for Conv/Linear, ones and zeros for the normalisations).

Attributes (in the spec):
- conv, conv_transpose: in_channels, out_channels, kernel_shape, strides, pads (ONNX order: all
  begins, then all ends), dilations, group, bias (0/1); conv_transpose also output_padding.
  Asymmetric conv padding is applied as an explicit pad before a padding-free conv.
- linear: in_features, out_features, bias. It applies to the last axis (ONNX MatMul/Gemm with a weight).
- batch_norm: num_features, rank (of its input, 2-5), eps, momentum (torch's convention: the weight
  of the new batch statistics).
- layer_norm: normalized_shape, eps, bias (0/1).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from effcap.capacity.graphs.ops import ints, split_pads, torch_pad
from effcap.capacity.pointwise_conv import convolution

_CONV_TRANSPOSES = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORMS = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _positive(attrs: dict[str, Any], *names: str) -> list[int]:
    values = [int(attrs[name]) for name in names]
    if any(v < 1 for v in values) or any(v > 1 << 20 for v in values):
        raise ValueError(f"{', '.join(names)} must be positive (got {values})")
    return values


def _conv_geometry(attrs: dict[str, Any]) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    kernel = ints(attrs["kernel_shape"])
    spatial = len(kernel)
    if spatial not in (1, 2, 3) or any(k < 1 for k in kernel):
        raise ValueError(f"kernel_shape {kernel}: 1 to 3 positive sizes")
    strides = ints(attrs.get("strides", [1] * spatial))
    dilations = ints(attrs.get("dilations", [1] * spatial))
    begins, ends = split_pads(ints(attrs.get("pads", [0] * 2 * spatial)), spatial)
    if len(strides) != spatial or len(dilations) != spatial or min(strides + dilations) < 1 or min(begins + ends) < 0:
        raise ValueError("strides and dilations must be positive and pads non-negative, one per spatial axis")
    return kernel, strides, dilations, begins, ends


def build_layer(op: str, attrs: dict[str, Any]) -> nn.Module:
    """The torch module a layer op runs, freshly initialised by torch's defaults."""
    if op in ("conv", "conv_transpose"):
        kernel, strides, dilations, begins, ends = _conv_geometry(attrs)
        c_in, c_out, groups = _positive(attrs, "in_channels", "out_channels", "group")
        if c_in % groups or c_out % groups:
            raise ValueError(f"group {groups} must divide in_channels {c_in} and out_channels {c_out}")
        bias = bool(attrs.get("bias", 1))
        if op == "conv":
            padding = begins if begins == ends else [0] * len(kernel)
            return convolution(len(kernel), c_in, c_out, kernel, strides, padding, dilations, groups, bias)
        if begins != ends:
            raise ValueError("ConvTranspose with asymmetric pads is not supported")
        output_padding = ints(attrs.get("output_padding", [0] * len(kernel)))
        return _CONV_TRANSPOSES[len(kernel)](
            c_in, c_out, kernel, strides, begins, output_padding, groups, bias, dilations
        )
    if op == "linear":
        c_in, c_out = _positive(attrs, "in_features", "out_features")
        return nn.Linear(c_in, c_out, bias=bool(attrs.get("bias", 1)))
    if op == "batch_norm":
        (features,) = _positive(attrs, "num_features")
        rank = int(attrs["rank"])
        if rank not in _BATCH_NORMS:
            raise ValueError(f"BatchNormalization of a rank-{rank} input is not supported (2 to 5)")
        return _BATCH_NORMS[rank](features, eps=float(attrs["eps"]), momentum=float(attrs["momentum"]))
    if op == "layer_norm":
        shape = ints(attrs["normalized_shape"])
        if not shape or min(shape) < 1:
            raise ValueError(f"normalized_shape {shape} must be positive sizes")
        return nn.LayerNorm(shape, eps=float(attrs["eps"]), bias=bool(attrs.get("bias", 1)))
    raise ValueError(f"unknown layer op {op!r}")


def pre_pad(op: str, attrs: dict[str, Any]) -> list[int] | None:
    """F.pad's list for a conv whose ONNX pads are asymmetric (torch's Conv pads symmetrically), else None."""
    if op != "conv":
        return None
    _, _, _, begins, ends = _conv_geometry(attrs)
    return torch_pad(begins, ends) if begins != ends else None
