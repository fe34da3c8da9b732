"""The `graph` architecture family: a network as a declarative graph of allow-listed operators.

An imported ONNX model becomes a GraphSpec (the structure, with every non-trainable constant
inline) plus a state dict (the trainable weights and BatchNorm statistics), so everything the
built-in families can do — fresh initialisation, checkpoints, trial batches crossing a process
boundary as JSON, structured pruning that writes a smaller spec — works for it too. Nothing in a
spec is code: node ops name entries of a fixed operator table (ops.py, layers.py).

Values are named as in the source graph. A node's inputs may be the network input, an inline
constant, a free parameter or an earlier node's output; nodes are in topological order.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from effcap.capacity.spec_base import SpecBase

MAX_NODES = 20_000
MAX_NAME_LENGTH = 512
# Inline constants hold every non-trainable value (shapes, axes, scalars, masks): bounded, since a
# spec travels in requests, reports' inputs and safetensors metadata.
MAX_CONSTANT_BYTES = 16 << 20
MAX_RANK = 8
CONSTANT_DTYPES = {"float32": np.dtype("<f4"), "int64": np.dtype("<i8"), "bool": np.dtype("bool")}
# A state-dict key: dot-separated names of letters, digits and underscores, as torch names the
# parameters of nested modules ("layer1.0.conv1.weight").
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")

AttributeValue = int | float | str | tuple[int, ...] | tuple[float, ...]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) > MAX_RANK or any(d < 0 for d in shape):
        raise ValueError(f"a shape has at most {MAX_RANK} non-negative dimensions")
    return shape


class GraphConstant(_Frozen):
    """A non-trainable value, stored inline as base64 of its little-endian bytes (exact, and JSON-safe for ±inf)."""

    dtype: Literal["float32", "int64", "bool"]
    shape: tuple[int, ...]
    data: str

    _check_shape = field_validator("shape")(classmethod(lambda cls, v: _shape(v)))

    @model_validator(mode="after")
    def _size_matches(self) -> GraphConstant:
        expected = math.prod(self.shape) * CONSTANT_DTYPES[self.dtype].itemsize
        if len(self.data) > 2 * MAX_CONSTANT_BYTES or len(base64.b64decode(self.data, validate=True)) != expected:
            raise ValueError(f"data must hold {expected} bytes for dtype {self.dtype} and shape {list(self.shape)}")
        return self

    @classmethod
    def of(cls, array: np.ndarray) -> GraphConstant:
        dtype = "bool" if array.dtype == np.bool_ else "int64" if np.issubdtype(array.dtype, np.integer) else "float32"
        data = np.array(array, dtype=CONSTANT_DTYPES[dtype], order="C")  # ascontiguousarray would make a 0-d array 1-d
        return cls(
            dtype=dtype, shape=tuple(int(d) for d in data.shape), data=base64.b64encode(data.tobytes()).decode("ascii")
        )

    def array(self) -> np.ndarray:
        raw = base64.b64decode(self.data)
        return np.frombuffer(raw, dtype=CONSTANT_DTYPES[self.dtype]).reshape(self.shape).copy()


class GraphParameter(_Frozen):
    """A trainable tensor no layer owns (a position embedding, a class token, a PReLU slope).

    `fill` is its fresh initialisation: a constant, or None for a truncated normal with std 0.02
    (as ViTs initialise position embeddings and class tokens)."""

    value: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    key: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=KEY_PATTERN.pattern)
    shape: tuple[int, ...]
    fill: float | None = None

    _check_shape = field_validator("shape")(classmethod(lambda cls, v: _shape(v)))


class GraphNode(_Frozen):
    """One operator application. Layer ops (lower case: conv, linear, batch_norm, ...) own the module
    at `layer`, whose configuration is in `attributes`; the others are ONNX operators by their ONNX name."""

    name: str = Field(max_length=MAX_NAME_LENGTH)
    op: str = Field(min_length=1, max_length=64)
    inputs: tuple[str, ...] = Field(max_length=64)
    outputs: tuple[str, ...] = Field(min_length=1, max_length=64)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=64)
    layer: str | None = Field(None, max_length=MAX_NAME_LENGTH, pattern=KEY_PATTERN.pattern)

    @field_validator("inputs", "outputs")
    @classmethod
    def _bounded_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(name) > MAX_NAME_LENGTH for name in names):
            raise ValueError(f"value names have at most {MAX_NAME_LENGTH} characters")
        return names


class GraphSpec(SpecBase):
    """A network as a graph: `input` is the batch of examples (N, *input_shape), `output` the logits
    (N, num_classes)."""

    family: Literal["graph"] = "graph"
    input_shape: tuple[int, ...] = Field(min_length=1, max_length=MAX_RANK - 1)
    input: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    output: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    nodes: tuple[GraphNode, ...] = Field(min_length=1, max_length=MAX_NODES)
    constants: dict[str, GraphConstant] = Field(default_factory=dict)
    parameters: tuple[GraphParameter, ...] = ()

    @model_validator(mode="after")
    def _well_formed(self) -> GraphSpec:
        from effcap.capacity.graphs.ops import is_known_op  # the operator table is the one list of ops

        if sum(len(c.data) for c in self.constants.values()) > 2 * MAX_CONSTANT_BYTES:
            raise ValueError(f"inline constants exceed {MAX_CONSTANT_BYTES >> 20} MiB")
        defined = {self.input}
        for name in [*self.constants, *(p.value for p in self.parameters)]:
            if name in defined:
                raise ValueError(f"value {name[:100]!r} is defined twice")
            defined.add(name)
        keys = [p.key for p in self.parameters]
        if len(set(keys)) != len(keys):
            raise ValueError("parameter keys must be unique")
        for index, node in enumerate(self.nodes):
            where = f"nodes[{index}] ({node.name[:100]!r})"
            if not is_known_op(node.op):
                raise ValueError(f"{where}: unknown operator {node.op[:64]!r}")
            if (node.layer is None) == node.op.islower():
                raise ValueError(f"{where}: layer ops (lower case) name their layer; ONNX operators do not")
            for name in node.inputs:
                if name and name not in defined:
                    raise ValueError(f"{where}: input {name[:100]!r} is not defined by an earlier node")
            for name in node.outputs:
                if name in defined:
                    raise ValueError(f"{where}: output {name[:100]!r} is defined twice")
                if name:
                    defined.add(name)
        if self.output not in defined:
            raise ValueError(f"output {self.output[:100]!r} is not computed by any node")
        return self

    def describe(self) -> str:
        layers = sum(node.layer is not None for node in self.nodes)
        return f"graph of {len(self.nodes)} nodes ({layers} layers)"
