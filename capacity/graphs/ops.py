"""The allow-listed ONNX operators a graph may use, as torch (data) and NumPy (static) functions.

Values are of two kinds. *Data* values are torch tensors that depend on the examples (and carry
autograd, vmap and autocast). *Static* values are small NumPy arrays known without the examples'
contents: inline constants, tensor shapes (`Shape`) and anything computed from them only (the
shape arithmetic exporters emit for `x.view(x.size(0), -1)`). Static values are computed in
Python each forward pass from the real shapes, so a graph exported at one batch size runs at any
other, under vmap (which hides the trial axis from `.shape`) and on the meta device alike.

Every function follows the ONNX operator's definition (onnx.ai/onnx/operators); where torch
differs (asymmetric padding, coerced axes), the difference is written out here. An operator
missing here is refused when a graph is imported, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

# Largest array static arithmetic may build on the host: shapes and masks are small, and a hostile
# graph asking ConstantOfShape for 10^12 values must fail here, not exhaust the server's memory.
MAX_STATIC_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class RunContext:
    """What a data operator may need besides its inputs: the mode and the input's device and dtype."""

    training: bool
    device: torch.device
    dtype: torch.dtype


Value = Any  # torch.Tensor (data), np.ndarray (static) or None (an omitted optional input)
DataFn = Callable[[list[Value], dict[str, Any], RunContext], list[Value]]
StaticFn = Callable[[list[Value], dict[str, Any]], list[np.ndarray]]


@dataclass(frozen=True)
class Operator:
    data: DataFn | None
    static: StaticFn | None
    # Input positions that must be static (shapes, axes, pads, indices of a Gather are not).
    static_inputs: tuple[int, ...] = ()


OPERATORS: dict[str, Operator] = {}
# Layer ops (layers.py) are registered there; listed here so specs can be validated without torch modules.
LAYER_OPS = frozenset({"conv", "conv_transpose", "linear", "batch_norm", "layer_norm"})


def is_known_op(op: str) -> bool:
    return op in OPERATORS or op in LAYER_OPS


def _register(
    name: str, data: DataFn | None = None, static: StaticFn | None = None, static_inputs: tuple[int, ...] = ()
) -> None:
    OPERATORS[name] = Operator(data, static, static_inputs)


# ---------------------------------------------------------------- helpers


def ints(value: Value) -> list[int]:
    """A static value or attribute as a list of Python ints."""
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in np.asarray(value).reshape(-1)]


def as_tensor(value: Value, like: torch.Tensor | RunContext) -> torch.Tensor:
    """A static operand as a tensor beside the data it meets (float constants take the data's dtype)."""
    if isinstance(value, torch.Tensor):
        return value
    device = like.device
    array = np.asarray(value)
    if not array.flags.writeable:  # views of inline constants: torch wants memory it may own
        array = array.copy()
    if array.dtype.kind == "f":
        return torch.as_tensor(
            array, dtype=like.dtype if (like.dtype.is_floating_point) else torch.float32, device=device
        )
    return torch.as_tensor(array, device=device)


def bounded(shape: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """`shape` if a static array of it is allowed (non-negative sizes, at most MAX_STATIC_ELEMENTS values)."""
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape) or np.prod(shape, dtype=np.float64) > MAX_STATIC_ELEMENTS:
        raise ValueError(f"a constant of shape {list(shape)} is larger than {MAX_STATIC_ELEMENTS:,} values")
    return shape


def _pair_data(values: list[Value], ctx: RunContext) -> list[torch.Tensor]:
    """Operands of an elementwise operator: static ones become tensors beside the first data operand."""
    like = next((v for v in values if isinstance(v, torch.Tensor)), ctx)
    return [as_tensor(v, like) for v in values]


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def _elementwise(torch_fn, numpy_fn) -> tuple[DataFn, StaticFn]:
    def data(values, attrs, ctx):
        return [torch_fn(*_pair_data(values, ctx))]

    def static(values, attrs):
        return [np.asarray(numpy_fn(*[np.asarray(v) for v in values]))]

    return data, static


def _integer_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Div on integers truncates toward zero (NumPy's // floors)."""
    if a.dtype.kind in "iub" and b.dtype.kind in "iub":
        return (np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))).astype(np.int64)
    return np.asarray(a / b, dtype=np.float32)


def _data_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


for _name, _torch, _numpy in (
    ("Add", torch.add, np.add),
    ("Sub", torch.sub, np.subtract),
    ("Mul", torch.mul, np.multiply),
    ("Div", _data_divide, _integer_divide),
    ("Pow", torch.pow, lambda a, b: np.power(a, b).astype(a.dtype)),
    ("Equal", torch.eq, np.equal),
    ("Less", torch.lt, np.less),
    ("LessOrEqual", torch.le, np.less_equal),
    ("Greater", torch.gt, np.greater),
    ("GreaterOrEqual", torch.ge, np.greater_equal),
    ("And", torch.logical_and, np.logical_and),
    ("Or", torch.logical_or, np.logical_or),
):
    _register(_name, *_elementwise(_torch, _numpy))


def _mod_static(values, attrs):
    a, b = (np.asarray(v) for v in values)
    return [np.fmod(a, b) if attrs.get("fmod", 0) else np.mod(a, b)]


_register("Mod", static=_mod_static)


def _unary(torch_fn, numpy_fn=None) -> tuple[DataFn, StaticFn | None]:
    def data(values, attrs, ctx):
        return [torch_fn(as_tensor(values[0], ctx), attrs)]

    static = None if numpy_fn is None else (lambda values, attrs: [np.asarray(numpy_fn(np.asarray(values[0]), attrs))])
    return data, static


def _gelu(x: torch.Tensor, attrs: dict) -> torch.Tensor:
    return F.gelu(x, approximate="tanh" if attrs.get("approximate", "none") == "tanh" else "none")


for _name, _torch, _numpy in (
    ("Neg", lambda x, a: -x, lambda x, a: -x),
    ("Abs", lambda x, a: x.abs(), lambda x, a: np.abs(x)),
    ("Sign", lambda x, a: x.sign(), lambda x, a: np.sign(x)),
    ("Floor", lambda x, a: x.floor(), lambda x, a: np.floor(x)),
    ("Ceil", lambda x, a: x.ceil(), lambda x, a: np.ceil(x)),
    ("Sqrt", lambda x, a: x.sqrt(), lambda x, a: np.sqrt(x)),
    ("Not", lambda x, a: x.logical_not(), lambda x, a: np.logical_not(x)),
    ("Exp", lambda x, a: x.exp(), None),
    ("Log", lambda x, a: x.log(), None),
    ("Reciprocal", lambda x, a: x.reciprocal(), None),
    ("Erf", lambda x, a: torch.erf(x), None),
    ("Sigmoid", lambda x, a: torch.sigmoid(x), None),
    ("Tanh", lambda x, a: torch.tanh(x), None),
    ("Relu", lambda x, a: F.relu(x), None),
    ("LeakyRelu", lambda x, a: F.leaky_relu(x, a.get("alpha", 0.01)), None),
    ("Elu", lambda x, a: F.elu(x, a.get("alpha", 1.0)), None),
    ("Selu", lambda x, a: a.get("gamma", 1.0507009873554805) * F.elu(x, a.get("alpha", 1.6732632423543772)), None),
    ("Gelu", _gelu, None),
    ("HardSigmoid", lambda x, a: (a.get("alpha", 0.2) * x + a.get("beta", 0.5)).clamp(0, 1), None),
    ("HardSwish", lambda x, a: F.hardswish(x), None),
    ("Softplus", lambda x, a: F.softplus(x), None),
    ("Softsign", lambda x, a: F.softsign(x), None),
    ("Identity", lambda x, a: x, lambda x, a: x),
):
    _register(_name, *_unary(_torch, _numpy))


def _prelu(values, attrs, ctx):
    x, slope = _pair_data(values, ctx)
    return [torch.where(x >= 0, x, x * slope)]


_register("PRelu", _prelu)


def _clip(values, attrs, ctx):
    x = as_tensor(values[0], ctx)
    low = attrs.get("min") if len(values) < 2 or values[1] is None else float(np.asarray(values[1]))
    high = attrs.get("max") if len(values) < 3 or values[2] is None else float(np.asarray(values[2]))
    return [x.clamp(low, high)]


_register("Clip", _clip, static_inputs=(1, 2))


def _variadic(torch_fn, numpy_fn) -> tuple[DataFn, StaticFn]:
    def data(values, attrs, ctx):
        tensors = _pair_data(values, ctx)
        out = tensors[0]
        for t in tensors[1:]:
            out = torch_fn(out, t)
        return [out]

    def static(values, attrs):
        out = np.asarray(values[0])
        for v in values[1:]:
            out = numpy_fn(out, np.asarray(v))
        return [out]

    return data, static


_register("Max", *_variadic(torch.maximum, np.maximum))
_register("Min", *_variadic(torch.minimum, np.minimum))
_register("Sum", *_variadic(torch.add, np.add))


def _where(values, attrs, ctx):
    condition, a, b = values
    like = next((v for v in (a, b) if isinstance(v, torch.Tensor)), ctx)
    return [torch.where(as_tensor(condition, like).bool(), as_tensor(a, like), as_tensor(b, like))]


_register("Where", _where, lambda values, attrs: [np.where(*[np.asarray(v) for v in values])])


# ---------------------------------------------------------------- casts and constants

ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    16: "bfloat16",
}
_FLOAT_CODES = {1, 10, 11, 16}


def _cast_data(values, attrs, ctx):
    x, to = as_tensor(values[0], ctx), int(attrs["to"])
    if to in _FLOAT_CODES:
        # Floating data stays in its own precision (float64 in exact checks, bf16 under autocast).
        return [x if x.is_floating_point() else x.to(ctx.dtype if ctx.dtype.is_floating_point else torch.float32)]
    if to == 9:
        return [x != 0]
    return [x.to(torch.int64)]


def _cast_static(values, attrs):
    to = int(attrs["to"])
    if to not in ONNX_DTYPES:
        raise ValueError(f"Cast to ONNX type {to} is not supported")
    kind = ONNX_DTYPES[to]
    target = (
        np.float32
        if kind in ("float32", "float16", "bfloat16", "float64")
        else np.bool_
        if kind == "bool"
        else np.int64
    )
    return [np.asarray(values[0]).astype(target)]


_register("Cast", _cast_data, _cast_static)


def _constant_of_shape_static(values, attrs):
    fill = attrs.get("value", 0.0)  # a Python int or float (the importer reads ONNX's one-element tensor)
    return [np.full(bounded(ints(values[0])), fill, dtype=np.int64 if isinstance(fill, int) else np.float32)]


def _constant_of_shape_data(values, attrs, ctx):
    (array,) = _constant_of_shape_static(values, attrs)
    return [as_tensor(array, ctx)]


_register("ConstantOfShape", _constant_of_shape_data, _constant_of_shape_static, static_inputs=(0,))


def _range_static(values, attrs):
    start, limit, delta = (np.asarray(v).reshape(()) for v in values)
    if delta == 0:
        raise ValueError("Range with delta 0")
    bounded((max(int(np.ceil((limit - start) / delta)), 0),))
    return [np.arange(start, limit, delta).astype(np.result_type(start, limit, delta))]


_register("Range", static=_range_static)


# ---------------------------------------------------------------- shapes


def _shape(values, attrs):
    shape = np.asarray(values[0].shape if hasattr(values[0], "shape") else np.shape(values[0]), dtype=np.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    return [shape[start:end]]


# A data tensor's shape is static: Shape reads it from the tensor without its contents.
_register("Shape", lambda values, attrs, ctx: _shape(values, attrs), _shape)
_register(
    "Size",
    lambda values, attrs, ctx: [np.asarray(int(np.prod(values[0].shape)), dtype=np.int64)],
    lambda values, attrs: [np.asarray(np.asarray(values[0]).size, dtype=np.int64)],
)


def reshape_target(input_shape: tuple[int, ...], target: list[int], allowzero: int) -> list[int]:
    """ONNX Reshape's target with 0 (copy the input's dimension, unless allowzero) resolved; -1 left to torch."""
    if allowzero:
        return target
    if (
        len(target) > 0
        and any(t == 0 for t in target)
        and len(input_shape) < max(i + 1 for i, t in enumerate(target) if t == 0)
    ):
        raise ValueError(f"Reshape copies a dimension the input {list(input_shape)} does not have")
    return [input_shape[i] if t == 0 else t for i, t in enumerate(target)]


_register(
    "Reshape",
    lambda values, attrs, ctx: [
        values[0].reshape(reshape_target(tuple(values[0].shape), ints(values[1]), attrs.get("allowzero", 0)))
    ],
    lambda values, attrs: [
        np.asarray(values[0]).reshape(reshape_target(np.shape(values[0]), ints(values[1]), attrs.get("allowzero", 0)))
    ],
    static_inputs=(1,),
)


def _flatten_shape(shape: tuple[int, ...], axis: int) -> tuple[int, int]:
    axis = axis % (len(shape) + 1) if axis < 0 else axis
    return int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64))


_register(
    "Flatten",
    lambda values, attrs, ctx: [values[0].reshape(_flatten_shape(tuple(values[0].shape), attrs.get("axis", 1)))],
    lambda values, attrs: [np.asarray(values[0]).reshape(_flatten_shape(np.shape(values[0]), attrs.get("axis", 1)))],
)


def _perm(rank: int, attrs: dict) -> list[int]:
    perm = ints(attrs["perm"]) if "perm" in attrs else list(range(rank))[::-1]
    if sorted(p % max(rank, 1) for p in perm) != list(range(rank)):
        raise ValueError(f"perm {perm} is not a permutation of {rank} axes")
    return perm


_register(
    "Transpose",
    lambda values, attrs, ctx: [values[0].permute(_perm(values[0].dim(), attrs))],
    lambda values, attrs: [np.transpose(np.asarray(values[0]), _perm(np.ndim(values[0]), attrs))],
)


def _axes(values: list[Value], attrs: dict, position: int) -> list[int] | None:
    """Axes from the input at `position` (newer opsets) or the `axes` attribute (older ones)."""
    if len(values) > position and values[position] is not None:
        return ints(values[position])
    return ints(attrs["axes"]) if "axes" in attrs else None


def _squeeze_axes(shape: tuple[int, ...], axes: list[int] | None) -> list[int]:
    if axes is None:
        return [i for i, d in enumerate(shape) if d == 1]
    resolved = sorted(_axis(a, len(shape)) for a in axes)
    if any(shape[a] != 1 for a in resolved):
        raise ValueError(f"Squeeze of axes {axes} whose size is not 1 in {list(shape)}")
    return resolved


def _squeezed_shape(shape: tuple[int, ...], axes: list[int] | None) -> list[int]:
    drop = set(_squeeze_axes(shape, axes))
    return [d for i, d in enumerate(shape) if i not in drop]


def _unsqueezed_shape(shape: tuple[int, ...], axes: list[int]) -> list[int]:
    rank = len(shape) + len(axes)
    inserted = sorted(_axis(a, rank) for a in axes)
    out, rest = [], iter(shape)
    for i in range(rank):
        out.append(1 if i in inserted else next(rest))
    return out


_register(
    "Squeeze",
    lambda values, attrs, ctx: [values[0].reshape(_squeezed_shape(tuple(values[0].shape), _axes(values, attrs, 1)))],
    lambda values, attrs: [
        np.asarray(values[0]).reshape(_squeezed_shape(np.shape(values[0]), _axes(values, attrs, 1)))
    ],
    static_inputs=(1,),
)
_register(
    "Unsqueeze",
    lambda values, attrs, ctx: [
        values[0].reshape(_unsqueezed_shape(tuple(values[0].shape), _axes(values, attrs, 1) or []))
    ],
    lambda values, attrs: [
        np.asarray(values[0]).reshape(_unsqueezed_shape(np.shape(values[0]), _axes(values, attrs, 1) or []))
    ],
    static_inputs=(1,),
)


def _concat_data(values, attrs, ctx):
    tensors = _pair_data([v for v in values if v is not None], ctx)
    return [torch.cat(tensors, dim=_axis(attrs["axis"], tensors[0].dim()))]


def _concat_static(values, attrs):
    arrays = [np.asarray(v) for v in values if v is not None]
    return [np.concatenate(arrays, axis=_axis(attrs["axis"], arrays[0].ndim))]


_register("Concat", _concat_data, _concat_static)


def _split_sizes(size: int, values: list[Value], attrs: dict, outputs: int) -> list[int]:
    if len(values) > 1 and values[1] is not None:
        sizes = ints(values[1])
    elif "split" in attrs:
        sizes = ints(attrs["split"])
    else:
        parts = int(attrs.get("num_outputs", outputs))
        chunk = -(-size // parts)
        sizes = [min(chunk, size - i * chunk) for i in range(parts)]
    if sum(sizes) != size or any(s < 0 for s in sizes):
        raise ValueError(f"Split sizes {sizes} do not add up to the axis' {size}")
    return sizes


def _split_data(values, attrs, ctx):
    x = values[0]
    axis = _axis(attrs.get("axis", 0), x.dim())
    return list(torch.split(x, _split_sizes(x.shape[axis], values, attrs, attrs["_outputs"]), dim=axis))


def _split_static(values, attrs):
    x = np.asarray(values[0])
    axis = _axis(attrs.get("axis", 0), x.ndim)
    bounds = np.cumsum(_split_sizes(x.shape[axis], values, attrs, attrs["_outputs"]))[:-1]
    return list(np.split(x, bounds, axis=axis))


_register("Split", _split_data, _split_static, static_inputs=(1,))


def slice_bounds(shape: tuple[int, ...], values: list[Value], attrs: dict) -> list[tuple[int, int, int, int]]:
    """(axis, start, stop, step) per sliced axis, clamped as ONNX Slice clamps them."""
    if len(values) > 1:
        starts, ends = ints(values[1]), ints(values[2])
        axes = ints(values[3]) if len(values) > 3 and values[3] is not None else list(range(len(starts)))
        steps = ints(values[4]) if len(values) > 4 and values[4] is not None else [1] * len(starts)
    else:  # opset < 10: attributes
        starts, ends = ints(attrs["starts"]), ints(attrs["ends"])
        axes = ints(attrs["axes"]) if "axes" in attrs else list(range(len(starts)))
        steps = [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ValueError("Slice's starts, ends, axes and steps differ in length")
    bounds = []
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = _axis(axis, len(shape))
        size = shape[axis]
        if step == 0:
            raise ValueError("Slice step 0")
        start, end = (start + size if start < 0 else start), (end + size if end < 0 else end)
        if step > 0:
            start, end = min(max(start, 0), size), min(max(end, 0), size)
        else:
            start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
        bounds.append((axis, start, end, step))
    return bounds


def _slice_data(values, attrs, ctx):
    x = values[0]
    for axis, start, end, step in slice_bounds(tuple(x.shape), values, attrs):
        if step > 0:
            x = x.narrow(axis, start, max(end - start, 0))[(slice(None),) * axis + (slice(None, None, step),)]
        else:
            index = torch.arange(start, end, step, device=x.device)
            x = x.index_select(axis, index)
    return [x]


def _slice_static(values, attrs):
    x = np.asarray(values[0])
    index = [slice(None)] * x.ndim
    for axis, start, end, step in slice_bounds(x.shape, values, attrs):
        index[axis] = slice(start, None if end < 0 else end, step)
    return [x[tuple(index)]]


_register("Slice", _slice_data, _slice_static, static_inputs=(1, 2, 3, 4))


def _gather_data(values, attrs, ctx):
    x, indices = values
    axis = _axis(attrs.get("axis", 0), x.dim())
    index = np.asarray(indices).astype(np.int64)
    index = np.where(index < 0, index + x.shape[axis], index)
    if np.any((index < 0) | (index >= x.shape[axis])):
        raise ValueError(f"Gather index out of range for axis {axis} of size {x.shape[axis]}")
    if index.ndim == 0:
        return [x.select(axis, int(index))]
    picked = x.index_select(axis, torch.as_tensor(index.reshape(-1), device=x.device))
    return [picked.reshape(*x.shape[:axis], *index.shape, *x.shape[axis + 1 :])]


def _gather_static(values, attrs):
    x = np.asarray(values[0])
    return [np.take(x, np.asarray(values[1]).astype(np.int64), axis=_axis(attrs.get("axis", 0), x.ndim))]


_register("Gather", _gather_data, _gather_static, static_inputs=(1,))


def _expand_shape(shape: tuple[int, ...], target: list[int]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(tuple(shape), tuple(target)))


_register(
    "Expand",
    lambda values, attrs, ctx: [
        as_tensor(values[0], ctx).expand(_expand_shape(tuple(np.shape(values[0])), ints(values[1])))
    ],
    lambda values, attrs: [
        np.broadcast_to(np.asarray(values[0]), bounded(_expand_shape(np.shape(values[0]), ints(values[1])))).copy()
    ],
    static_inputs=(1,),
)
_register(
    "Tile",
    lambda values, attrs, ctx: [as_tensor(values[0], ctx).repeat(*ints(values[1]))],
    lambda values, attrs: [np.tile(np.asarray(values[0]), _tile_repeats(np.shape(values[0]), ints(values[1])))],
    static_inputs=(1,),
)


def _tile_repeats(shape: tuple[int, ...], repeats: list[int]) -> list[int]:
    if len(repeats) != len(shape) or any(r < 0 for r in repeats):
        raise ValueError(f"Tile needs one non-negative repeat per axis of {list(shape)}, got {repeats}")
    bounded([d * r for d, r in zip(shape, repeats)])
    return repeats


# ---------------------------------------------------------------- reductions, matmul, softmax


def _reduce(torch_fn, numpy_fn, axes_input: bool = True) -> tuple[DataFn, StaticFn]:
    def resolved(rank: int, values, attrs) -> tuple[int, ...] | None:
        axes = _axes(values, attrs, 1) if axes_input else (ints(attrs["axes"]) if "axes" in attrs else None)
        if not axes:
            return None if not attrs.get("noop_with_empty_axes", 0) else ()
        return tuple(_axis(a, rank) for a in axes)

    def data(values, attrs, ctx):
        x = as_tensor(values[0], ctx)
        axes = resolved(x.dim(), values, attrs)
        if axes == ():
            return [x]
        dims = tuple(range(x.dim())) if axes is None else axes
        return [torch_fn(x, dims, bool(attrs.get("keepdims", 1)))]

    def static(values, attrs):
        x = np.asarray(values[0])
        axes = resolved(x.ndim, values, attrs)
        return [x if axes == () else np.asarray(numpy_fn(x, axis=axes, keepdims=bool(attrs.get("keepdims", 1))))]

    return data, static


for _name, _torch, _numpy in (
    ("ReduceMean", lambda x, d, k: x.mean(dim=d, keepdim=k), np.mean),
    ("ReduceSum", lambda x, d, k: x.sum(dim=d, keepdim=k), np.sum),
    ("ReduceMax", lambda x, d, k: x.amax(dim=d, keepdim=k), np.max),
    ("ReduceMin", lambda x, d, k: x.amin(dim=d, keepdim=k), np.min),
    ("ReduceProd", lambda x, d, k: _prod(x, d, k), np.prod),
    (
        "ReduceSumSquare",
        lambda x, d, k: (x * x).sum(dim=d, keepdim=k),
        lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
    ),
    (
        "ReduceL2",
        lambda x, d, k: (x * x).sum(dim=d, keepdim=k).sqrt(),
        lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    ),
):
    _register(_name, *_reduce(_torch, _numpy), static_inputs=(1,))


def _prod(x: torch.Tensor, dims: tuple[int, ...], keepdim: bool) -> torch.Tensor:
    for d in sorted(dims, reverse=True):
        x = x.prod(dim=d, keepdim=keepdim)
    return x


def _matmul(values, attrs, ctx):
    a, b = _pair_data(values, ctx)
    return [torch.matmul(a, b)]


_register("MatMul", _matmul, lambda values, attrs: [np.matmul(np.asarray(values[0]), np.asarray(values[1]))])


def _gemm(values, attrs, ctx):
    a, b = _pair_data(values[:2], ctx)
    a = a.transpose(0, 1) if attrs.get("transA", 0) else a
    b = b.transpose(0, 1) if attrs.get("transB", 0) else b
    out = attrs.get("alpha", 1.0) * torch.matmul(a, b)
    if len(values) > 2 and values[2] is not None:
        out = out + attrs.get("beta", 1.0) * as_tensor(values[2], out)
    return [out]


_register("Gemm", _gemm)


def _softmax(torch_fn) -> DataFn:
    def data(values, attrs, ctx):
        x = as_tensor(values[0], ctx)
        axis = _axis(attrs.get("axis", -1), x.dim())
        if attrs.get("_coerce_2d", 0):
            # opset < 13: softmax over all axes from `axis` on, as one flattened axis.
            return [torch_fn(x.reshape(*x.shape[:axis], -1), -1).reshape(x.shape)]
        return [torch_fn(x, axis)]

    return data


_register("Softmax", _softmax(lambda x, d: torch.softmax(x, dim=d)))
_register("LogSoftmax", _softmax(lambda x, d: torch.log_softmax(x, dim=d)))


def _dropout(values, attrs, ctx):
    x = values[0]
    ratio = float(np.asarray(values[1])) if len(values) > 1 and values[1] is not None else attrs.get("ratio", 0.5)
    # The graph's own training_mode input is ignored: the module's train()/eval() decides, as in torch.
    return [F.dropout(x, ratio, training=ctx.training)]


_register("Dropout", _dropout, static_inputs=(1, 2))


# ---------------------------------------------------------------- pooling and padding


def split_pads(pads: list[int], spatial: int) -> tuple[list[int], list[int]]:
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, x2_end] as (begins, ends)."""
    if len(pads) != 2 * spatial:
        raise ValueError(f"pads need {2 * spatial} entries for {spatial} spatial axes, got {len(pads)}")
    return pads[:spatial], pads[spatial:]


def torch_pad(begins: list[int], ends: list[int]) -> list[int]:
    """(begins, ends) over axes 2.. as F.pad's list, last axis first."""
    out: list[int] = []
    for begin, end in zip(reversed(begins), reversed(ends)):
        out += [begin, end]
    return out


def _pool_geometry(x: torch.Tensor, attrs: dict) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    spatial = x.dim() - 2
    kernel = ints(attrs["kernel_shape"])
    if len(kernel) != spatial or spatial not in (1, 2, 3):
        raise ValueError(f"kernel_shape {kernel} does not fit an input of rank {x.dim()}")
    strides = ints(attrs.get("strides", [1] * spatial))
    dilations = ints(attrs.get("dilations", [1] * spatial))
    begins, ends = split_pads(ints(attrs.get("pads", [0] * 2 * spatial)), spatial)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = same_pads(list(x.shape[2:]), kernel, strides, dilations, upper=auto_pad == "SAME_UPPER")
    elif auto_pad == "VALID":
        begins, ends = [0] * spatial, [0] * spatial
    return kernel, strides, dilations, begins, ends


def same_pads(
    size: list[int], kernel: list[int], strides: list[int], dilations: list[int], upper: bool
) -> tuple[list[int], list[int]]:
    """auto_pad SAME_*: output size ceil(in / stride); the odd pixel goes at the end (UPPER) or start."""
    begins, ends = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if upper else large)
        ends.append(large if upper else small)
    return begins, ends


def _max_pool(values, attrs, ctx):
    x = values[0]
    kernel, strides, dilations, begins, ends = _pool_geometry(x, attrs)
    if begins != ends or any(2 * p > k for p, k in zip(begins, kernel)):
        x = F.pad(x, torch_pad(begins, ends), value=float("-inf"))
        begins = [0] * len(kernel)
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[len(kernel) - 1]
    return [pool(x, kernel, strides, begins, dilations, ceil_mode=bool(attrs.get("ceil_mode", 0)))]


def _average_pool(values, attrs, ctx):
    x = values[0]
    kernel, strides, dilations, begins, ends = _pool_geometry(x, attrs)
    if any(d != 1 for d in dilations):
        raise ValueError("AveragePool with dilations is not supported")
    include_pad = bool(attrs.get("count_include_pad", 0))
    if begins != ends or any(2 * p > k for p, k in zip(begins, kernel)):
        if not include_pad and any(begins + ends):
            raise ValueError("AveragePool with asymmetric padding that the average excludes is not supported")
        x = F.pad(x, torch_pad(begins, ends))
        begins = [0] * len(kernel)
    pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(kernel) - 1]
    return [pool(x, kernel, strides, begins, ceil_mode=bool(attrs.get("ceil_mode", 0)), count_include_pad=include_pad)]


_register("MaxPool", _max_pool)
_register("AveragePool", _average_pool)
_register(
    "GlobalAveragePool", lambda values, attrs, ctx: [values[0].mean(dim=tuple(range(2, values[0].dim())), keepdim=True)]
)
_register(
    "GlobalMaxPool", lambda values, attrs, ctx: [values[0].amax(dim=tuple(range(2, values[0].dim())), keepdim=True)]
)


def _lrn(values, attrs, ctx):
    # ONNX and torch agree: x / (bias + alpha/size · Σ x²)^beta over `size` neighbouring channels.
    return [
        F.local_response_norm(
            values[0], int(attrs["size"]), attrs.get("alpha", 1e-4), attrs.get("beta", 0.75), attrs.get("bias", 1.0)
        )
    ]


_register("LRN", _lrn)


def _pad(values, attrs, ctx):
    x = as_tensor(values[0], ctx)
    pads = ints(values[1]) if len(values) > 1 and values[1] is not None else ints(attrs["pads"])
    axes = ints(values[3]) if len(values) > 3 and values[3] is not None else list(range(x.dim()))
    axes = [_axis(a, x.dim()) for a in axes]
    begins, ends = split_pads(pads, len(axes))
    full_begins, full_ends = [0] * x.dim(), [0] * x.dim()
    for axis, begin, end in zip(axes, begins, ends):
        full_begins[axis], full_ends[axis] = begin, end
    first = next((i for i in range(x.dim()) if full_begins[i] or full_ends[i]), x.dim())
    mode = attrs.get("mode", "constant")
    if mode != "constant" and first < 2:
        raise ValueError(f"Pad mode {mode!r} on the batch or channel axis is not supported")
    pad = torch_pad(full_begins[first:], full_ends[first:])
    if mode == "constant":
        value = float(np.asarray(values[2])) if len(values) > 2 and values[2] is not None else attrs.get("value", 0.0)
        return [F.pad(x, pad, value=value)]
    return [F.pad(x, pad, mode={"reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode])]


_register("Pad", _pad, static_inputs=(1, 2, 3))
