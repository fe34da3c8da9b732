"""A GraphSpec as a trainable torch module: layers are real submodules, the rest is interpreted.

The forward pass walks the spec's nodes in order, looking layers and free parameters up by name on
every call (not through references captured at construction), so `functional_call`, `vmap`,
deepcopy and `load_state_dict` see an ordinary module. Static values (shapes and constants,
ops.py) are NumPy arrays computed on the host, which is why the same module runs at any batch
size, under vmap, and on the meta device that checks a spec without allocating anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from effcap.capacity.graphs.layers import build_layer, pre_pad
from effcap.capacity.graphs.ops import OPERATORS, RunContext
from effcap.capacity.graphs.spec import GraphNode, GraphSpec

# Largest tensor a graph may make per example (checked on the meta device before anything runs):
# 64M values is 256 MiB per example in float32, far beyond an ImageNet ResNet's largest activation.
MAX_ELEMENTS_PER_EXAMPLE = 1 << 26
TRUNC_NORMAL_STD = 0.02
# Attributes of GraphNetwork itself: no parameter or layer may take these names at the root.
OWN_ATTRIBUTES = frozenset({"_graph_spec", "_graph_steps", "_graph_constants", "_graph_parameters"})


class GraphRunError(ValueError):
    """A node failed to compute: names the node, so a user can find it in their graph."""

    def __init__(self, index: int, name: str, op: str, cause: BaseException) -> None:
        super().__init__(f"node {index} ({name[:100]!r}, {op}) failed: {str(cause)[:300]}")
        self.index, self.name, self.op = index, name, op


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    static: bool
    layer: str | None = None
    pre_pad: list[int] | None = None


class _Scope(nn.Module):
    """A namespace for dotted parameter and layer names (as torch nests modules); it computes nothing."""


def reserved_root_names() -> frozenset[str]:
    """Names a layer or parameter cannot take at the root of a GraphNetwork."""
    return frozenset(dir(nn.Module)) | OWN_ATTRIBUTES


class GraphNetwork(nn.Module):
    def __init__(self, spec: GraphSpec) -> None:
        super().__init__()
        self._graph_spec = spec
        self._graph_constants = {name: constant.array() for name, constant in spec.constants.items()}
        self._graph_parameters = tuple((p.value, p.key) for p in spec.parameters)
        for parameter in spec.parameters:
            _attach(self, parameter.key, nn.Parameter(_fresh(parameter.shape, parameter.fill)))
        static = set(spec.constants)
        steps = []
        for index, node in enumerate(spec.nodes):
            try:
                steps.append(compile_node(index, node, static, lambda key, layer: _attach(self, key, layer)))
            except (ValueError, KeyError, TypeError) as error:
                raise GraphRunError(index, node.name, node.op, error) from None
        self._graph_steps = tuple(steps)

    @property
    def graph(self) -> GraphSpec:
        return self._graph_spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.values(x)[self._graph_spec.output]

    def values(self, x: torch.Tensor) -> dict[str, Any]:
        """Every value the graph computes for input `x`, by name (the output among them)."""
        values: dict[str, Any] = dict(self._graph_constants)
        values[self._graph_spec.input] = x
        for value, key in self._graph_parameters:
            # Looked up as an attribute, not with get_parameter: functional_call (vmap, the Rademacher ascent,
            # compression) swaps parameters for plain tensors, which get_parameter refuses.
            scope, _, leaf = key.rpartition(".")
            values[value] = getattr(self.get_submodule(scope), leaf)
        context = RunContext(self.training, x.device, x.dtype)
        for step in self._graph_steps:
            try:
                outputs = run_step(step, values, context, self.get_submodule)
            except torch.OutOfMemoryError:
                raise
            except (RuntimeError, ValueError, IndexError, TypeError, KeyError) as error:
                raise GraphRunError(step.index, step.name, step.op, error) from None
            for name, output in zip(step.outputs, outputs):
                if name:
                    values[name] = output
        return values


def run_step(step: Step, values: dict[str, Any], context: RunContext, layer: Callable[[str], nn.Module]) -> list[Any]:
    """The step's outputs from the values computed so far; `layer` finds a layer module by path."""
    inputs = [values[name] if name else None for name in step.inputs]
    if step.layer is not None:
        x = inputs[0]
        if step.pre_pad is not None:
            x = nn.functional.pad(x, step.pre_pad)
        return [layer(step.layer)(x)]
    operator = OPERATORS[step.op]
    if step.static:
        return operator.static(inputs, step.attrs)
    return operator.data(inputs, step.attrs, context)


def compile_node(index: int, node: GraphNode, static: set[str], add_layer: Callable[[str, nn.Module], None]) -> Step:
    """Check a node against the operator table and decide whether it computes a static value.

    `static` holds the names of static values so far and gains the node's outputs if they are
    static; a layer node's freshly built module is handed to `add_layer` with its path."""
    attrs = dict(node.attributes)
    if node.layer is not None:
        if len([i for i in node.inputs if i]) != 1:
            raise ValueError(f"a {node.op} layer takes one input")
        add_layer(node.layer, build_layer(node.op, attrs))
        return Step(
            index, node.name, node.op, node.inputs, node.outputs, attrs, False, node.layer, pre_pad(node.op, attrs)
        )
    operator = OPERATORS[node.op]
    if node.op == "Split":
        attrs["_outputs"] = len(node.outputs)
    for position in operator.static_inputs:
        if position < len(node.inputs) and node.inputs[position] and node.inputs[position] not in static:
            raise ValueError(f"input {position} must be a constant or computed from shapes only")
    if node.op == "Shape":
        is_static = True  # a shape is known without the tensor's contents
    elif node.op == "ConstantOfShape":
        is_static = np.asarray(attrs.get("value", 0.0)).dtype.kind in "iub"  # an integer fill is shape arithmetic
    else:
        is_static = operator.static is not None and all(name in static for name in node.inputs if name)
    if not is_static and operator.data is None:
        raise ValueError(f"{node.op} is supported on constants and shapes only, and an input here is data")
    if is_static:
        static.update(node.outputs)
    return Step(index, node.name, node.op, node.inputs, node.outputs, attrs, is_static)


def _attach(root: nn.Module, key: str, item: nn.Module | nn.Parameter) -> None:
    """Register `item` at the dotted `key`, creating namespaces on the way (as torch nests modules)."""
    *path, leaf = key.split(".")
    if (path[0] if path else leaf) in OWN_ATTRIBUTES:
        raise ValueError(f"{key!r} is a reserved name")
    module = root
    for part in path:
        child = module._modules.get(part)
        if child is None:
            if hasattr(module, part):
                raise ValueError(f"{key!r} collides with an attribute named {part!r}")
            child = _Scope()
            module.add_module(part, child)
        elif not isinstance(child, _Scope):
            raise ValueError(f"{key!r} would nest inside layer {part!r}")
        module = child
    try:
        if isinstance(item, nn.Parameter):
            module.register_parameter(leaf, item)
        else:
            module.add_module(leaf, item)
    except KeyError as error:  # torch refuses names that exist already
        raise ValueError(f"{key!r} is defined twice or collides with an attribute: {error}") from None


def _fresh(shape: tuple[int, ...], fill: float | None) -> torch.Tensor:
    if fill is not None:
        return torch.full(shape, float(fill))
    tensor = torch.empty(shape)
    return nn.init.trunc_normal_(tensor, std=TRUNC_NORMAL_STD, a=-2 * TRUNC_NORMAL_STD, b=2 * TRUNC_NORMAL_STD)


def data_shapes(network: GraphNetwork, batch: int = 2) -> dict[str, tuple[int, ...]]:
    """Shapes of every data value for a batch of `batch`, found on the meta device (nothing allocated).

    Refuses a graph that would make any tensor over MAX_ELEMENTS_PER_EXAMPLE per example.
    """
    spec = network.graph
    meta = network if next(network.parameters(), torch.empty(0)).device.type == "meta" else None
    if meta is None:
        with torch.device("meta"):
            meta = GraphNetwork(spec)
    shapes = {}
    for name, value in _meta_values(meta, torch.empty(batch, *spec.input_shape, device="meta")).items():
        if isinstance(value, torch.Tensor):
            if value.numel() > MAX_ELEMENTS_PER_EXAMPLE * batch:
                raise ValueError(
                    f"value {name[:100]!r} would hold {value.numel() // batch:,} values per example (at most "
                    f"{MAX_ELEMENTS_PER_EXAMPLE:,})"
                )
            shapes[name] = tuple(value.shape)
    return shapes


def _meta_values(network: GraphNetwork, x: torch.Tensor) -> dict[str, Any]:
    with torch.no_grad():
        return network.eval().values(x)
