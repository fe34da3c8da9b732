"""Which units of an imported graph structured pruning can remove exactly: a dependency analysis.

Every Conv and Linear layer writes a group of units (output channels or features). Following each
value through the graph, we track which axis carries units and which groups they belong to (a
`Layout`): elementwise operators pass a layout on, and a residual Add of two layouts makes their
groups one (a unit of a residual stream is written by every layer that adds to it, and must go
from all of them at once); a Concat along the unit axis lays groups side by side; a Flatten or a
reshape that merges the unit axis with the spatial axes after it gives each unit a span of inputs;
BatchNorm and depthwise convolutions follow their input's units. A Conv or Linear that reads a
layout is a `Reader` of those groups: its input columns go with them.

Anything whose result would change if a unit disappeared — a LayerNorm or Softmax over the unit
axis, a slice of it, an attention product, a grouped convolution, a constant that varies along it —
makes the graph not prunable exactly, and the refusal names that node: never a silent skip. The
result is a UnitGraph (compression/unit_graphs.py), so the one removal routine of the built-in
families (compression/structured.py) serves graphs too; its `rebuild` writes the smaller graph's
spec, reshape constants included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from effcap.capacity.compression.unit_graphs import Reader, Segment, UnitGraph, UnitGroup
from effcap.capacity.errors import InputError
from effcap.capacity.graphs.network import GraphNetwork, data_shapes
from effcap.capacity.graphs.spec import GraphConstant, GraphNode, GraphSpec

FIELD = "spec.compressibility.methods"
_PASS_THROUGH = frozenset(
    {
        "Relu",
        "LeakyRelu",
        "Elu",
        "Selu",
        "Gelu",
        "Sigmoid",
        "Tanh",
        "HardSigmoid",
        "HardSwish",
        "Softplus",
        "Softsign",
        "Erf",
        "Neg",
        "Abs",
        "Exp",
        "Log",
        "Sqrt",
        "Reciprocal",
        "Sign",
        "Floor",
        "Ceil",
        "Identity",
        "Cast",
        "Dropout",
        "Clip",
    }
)
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Where", "PRelu"})
_SPATIAL_POOLS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"})
_REDUCTIONS = frozenset(
    {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL2"}
)


class NotPrunable(Exception):
    def __init__(self, node: GraphNode, why: str) -> None:
        super().__init__(f"node {node.name[:100]!r} ({node.op}) {why}")


@dataclass(frozen=True)
class Layout:
    """Units along `axis`, group after group; each unit spans `span` consecutive entries."""

    axis: int
    segments: tuple[Segment, ...]


@dataclass
class _Analysis:
    spec: GraphSpec
    shapes: dict[str, tuple[int, ...]]
    layouts: dict[str, Layout] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    writers: dict[str, list[str]] = field(default_factory=dict)
    # Layers that follow a group's units (BatchNorm, depthwise convs) → a group they follow.
    followers: dict[str, str] = field(default_factory=dict)
    readers: list[tuple[str, tuple[Segment, ...]]] = field(default_factory=list)
    # Reshape nodes whose constant target names a unit axis' size: (node index, axis, layout there).
    reshapes: list[tuple[int, int, Layout]] = field(default_factory=list)

    def find(self, group: str) -> str:
        while self.parent[group] != group:
            self.parent[group] = self.parent[self.parent[group]]
            group = self.parent[group]
        return group

    def new_group(self, name: str, size: int, writer: str) -> str:
        self.parent[name], self.sizes[name], self.writers[name] = name, size, [writer]
        return name

    def unite(self, a: Layout, b: Layout, node: GraphNode) -> None:
        if len(a.segments) != len(b.segments) or any(x.span != y.span for x, y in zip(a.segments, b.segments)):
            raise NotPrunable(node, "combines values whose units are laid out differently")
        for x, y in zip(a.segments, b.segments):
            root_x, root_y = self.find(x.group), self.find(y.group)
            if self.sizes[root_x] != self.sizes[root_y]:
                raise NotPrunable(node, f"combines {self.sizes[root_x]} units with {self.sizes[root_y]}")
            if root_x != root_y:
                self.parent[root_y] = root_x
                self.writers[root_x] += self.writers.pop(root_y)


def unit_graph_of(spec: GraphSpec) -> UnitGraph:
    """The graph's unit groups and readers; InputError (naming the node) when no exact removal exists."""
    with torch.device("meta"):
        shapes = data_shapes(GraphNetwork(spec))
    analysis = _Analysis(spec, shapes)
    try:
        for index, node in enumerate(spec.nodes):
            _visit(analysis, index, node)
        frozen = _frozen_groups(analysis)
    except NotPrunable as refusal:
        raise InputError(
            FIELD,
            f"structured pruning cannot remove units of this graph exactly: {refusal}",
            reason="STRUCTURED_PRUNING_UNSUPPORTED",
        ) from None
    return _unit_graph(analysis, frozen)


def _layout_of(analysis: _Analysis, name: str) -> Layout | None:
    layout = analysis.layouts.get(name)
    if layout is None:
        return None
    return Layout(layout.axis, tuple(Segment(analysis.find(s.group), s.span) for s in layout.segments))


def _visit(analysis: _Analysis, index: int, node: GraphNode) -> None:
    inputs = [name for name in node.inputs if name]
    laid_out = {name: _layout_of(analysis, name) for name in inputs if _layout_of(analysis, name) is not None}
    output = node.outputs[0]
    rank = len(analysis.shapes.get(output, ()))
    if node.layer is not None:
        return _visit_layer(analysis, node, laid_out.get(node.inputs[0]), rank)
    if not laid_out or node.op in ("Shape", "Size"):
        return None  # a shape is static: computed again from the smaller tensors, it follows them
    first = next(iter(laid_out.values()))
    if node.op in _PASS_THROUGH or node.op in _SPATIAL_POOLS:
        analysis.layouts[output] = first
    elif node.op in _ELEMENTWISE:
        analysis.layouts[output] = _elementwise(analysis, node, laid_out, rank)
    elif node.op == "Concat":
        analysis.layouts[output] = _concat(analysis, node, laid_out, rank)
    elif node.op == "Flatten":
        analysis.layouts[output] = _flatten(analysis, node, first)
    elif node.op == "Reshape":
        analysis.layouts[output] = _reshape(analysis, index, node, first)
    elif node.op == "Transpose":
        perm = list(node.attributes.get("perm", range(rank)[::-1]))
        analysis.layouts[output] = Layout(perm.index(first.axis), first.segments)
    elif node.op in _AXIS_MOVERS or node.op in _REDUCTIONS:
        for name in (n for n in node.outputs if n):
            analysis.layouts[name] = Layout(_unit_axis_after(analysis, node, first.axis, name), first.segments)
    else:
        raise NotPrunable(node, "reads units in a way that removing some would change")
    return None


def _visit_layer(analysis: _Analysis, node: GraphNode, layout: Layout | None, rank: int) -> None:
    attrs, output = node.attributes, node.outputs[0]
    if node.op == "conv":
        depthwise = attrs["group"] == attrs["in_channels"] == attrs["out_channels"] and attrs["group"] > 1
        if layout is not None and depthwise:
            if layout.axis != 1 or len(layout.segments) != 1 or layout.segments[0].span != 1:
                raise NotPrunable(node, "is a depthwise convolution of concatenated channels")
            _follow(analysis, node, layout)
            analysis.layouts[output] = layout
            return
        if attrs["group"] != 1 and layout is not None:
            raise NotPrunable(
                node, f"is a grouped convolution ({attrs['group']} groups): its channels cannot be removed one by one"
            )
        if layout is not None:
            _read(analysis, node, layout, axis=1)
        group = analysis.new_group(node.layer, attrs["out_channels"], node.layer)
        analysis.layouts[output] = Layout(1, (Segment(group),))
    elif node.op == "linear":
        if layout is not None:
            _read(analysis, node, layout, axis=rank - 1)
        group = analysis.new_group(node.layer, attrs["out_features"], node.layer)
        analysis.layouts[output] = Layout(rank - 1, (Segment(group),))
    elif node.op == "batch_norm":
        if layout is not None:
            if layout.axis != 1 or len(layout.segments) != 1 or layout.segments[0].span != 1:
                raise NotPrunable(node, "normalises channels that several groups share")
            _follow(analysis, node, layout)
            analysis.layouts[output] = layout
    elif node.op == "layer_norm":
        if layout is not None:
            if layout.axis >= rank - len(attrs["normalized_shape"]):
                raise NotPrunable(node, "normalises over the units: its statistics would change with any unit removed")
            analysis.layouts[output] = layout
    else:  # conv_transpose: its weight reads units on axis 0 and writes them on axis 1
        raise NotPrunable(node, "is a transposed convolution, which structured pruning does not support")


def _follow(analysis: _Analysis, node: GraphNode, layout: Layout) -> None:
    """A layer indexed by its input's units: it writes them too (its weights go with them)."""
    group = layout.segments[0].group
    analysis.writers[group].append(node.layer)
    analysis.followers[node.layer] = group


def _read(analysis: _Analysis, node: GraphNode, layout: Layout, axis: int) -> None:
    if layout.axis != axis:
        raise NotPrunable(node, f"mixes along axis {axis} while the units are on axis {layout.axis}")
    if node.op == "conv" and any(s.span != 1 for s in layout.segments):
        raise NotPrunable(node, "reads channels spread over several positions")
    analysis.readers.append((f"{node.layer}.weight", layout.segments))


def _elementwise(analysis: _Analysis, node: GraphNode, laid_out: dict[str, Layout], rank: int) -> Layout:
    """Operands aligned right (NumPy broadcasting): laid-out ones become one group; the others must not vary
    along the units. A laid-out operand of one unit broadcast over many (a spatial attention map) is one of the
    others: its own unit is read as a whole, never removed (a group keeps at least one unit)."""
    output_shape = analysis.shapes[node.outputs[0]]
    aligned = {}
    for name, layout in laid_out.items():
        axis = layout.axis + rank - len(analysis.shapes[name])
        if analysis.shapes[name][layout.axis] == output_shape[axis]:
            aligned[name] = Layout(axis, layout.segments)
    if not aligned:
        raise NotPrunable(node, "broadcasts units over more units")
    first = next(iter(aligned.values()))
    for layout in list(aligned.values())[1:]:
        if layout.axis != first.axis:
            raise NotPrunable(node, "combines values whose units are on different axes")
        analysis.unite(first, layout, node)
    for name in node.inputs:
        if name and name not in aligned and _size_along(analysis, name, first.axis, rank) > 1:
            raise NotPrunable(node, f"combines the units with {name[:100]!r}, which varies along them")
    return _layout_of_aligned(analysis, first)


def _layout_of_aligned(analysis: _Analysis, layout: Layout) -> Layout:
    return Layout(layout.axis, tuple(Segment(analysis.find(s.group), s.span) for s in layout.segments))


def _size_along(analysis: _Analysis, name: str, axis: int, rank: int) -> int:
    if name in analysis.spec.constants:
        shape = analysis.spec.constants[name].shape
    else:
        parameter = next((p for p in analysis.spec.parameters if p.value == name), None)
        shape = parameter.shape if parameter is not None else analysis.shapes.get(name, ())
    position = axis - (rank - len(shape))
    return shape[position] if 0 <= position < len(shape) else 1


def _concat(analysis: _Analysis, node: GraphNode, laid_out: dict[str, Layout], rank: int) -> Layout:
    axis = node.attributes["axis"] % rank
    data = [name for name in node.inputs if name]
    if any(name not in laid_out for name in data):
        raise NotPrunable(node, "concatenates units with values that are not units")
    layouts = [laid_out[name] for name in data]
    if all(layout.axis == axis for layout in layouts):
        return Layout(axis, tuple(segment for layout in layouts for segment in layout.segments))
    for layout in layouts[1:]:
        analysis.unite(layouts[0], layout, node)
    return _layout_of_aligned(analysis, layouts[0])


def _flatten(analysis: _Analysis, node: GraphNode, layout: Layout) -> Layout:
    shape = analysis.shapes[node.inputs[0]]
    axis = node.attributes.get("axis", 1) % (len(shape) + 1)
    if layout.axis < axis or math.prod(shape[axis : layout.axis]) != 1:
        raise NotPrunable(node, "flattens the units together with the axes before them")
    trailing = math.prod(shape[layout.axis + 1 :])
    return Layout(1, tuple(Segment(s.group, s.span * trailing) for s in layout.segments))


def _reshape(analysis: _Analysis, index: int, node: GraphNode, layout: Layout) -> Layout:
    """A reshape may keep the unit axis, or merge it with every axis after it (a flatten)."""
    before, after = analysis.shapes[node.inputs[0]], analysis.shapes[node.outputs[0]]
    leading = math.prod(before[: layout.axis])
    for axis in range(len(after)):
        if math.prod(after[:axis]) != leading:
            continue
        if after[axis] == before[layout.axis] and math.prod(after[axis + 1 :]) == math.prod(before[layout.axis + 1 :]):
            new = layout
        elif after[axis] == math.prod(before[layout.axis :]) and axis == len(after) - 1:
            trailing = math.prod(before[layout.axis + 1 :])
            new = Layout(axis, tuple(Segment(s.group, s.span * trailing) for s in layout.segments))
        else:
            continue
        new = Layout(axis, new.segments)
        if node.inputs[1] in analysis.spec.constants:
            analysis.reshapes.append((index, axis, new))
        return new
    raise NotPrunable(node, "splits the units or mixes them with other axes")


_AXIS_MOVERS = frozenset(
    {"Squeeze", "Unsqueeze", "Softmax", "LogSoftmax", "Pad", "Slice", "Gather", "Split", "Expand", "Tile"}
)


def _unit_axis_after(analysis: _Analysis, node: GraphNode, axis: int, output: str) -> int:
    """Where the unit axis is in `output` of an operator that acts on other axes; refuses one that touches it."""
    before, after = analysis.shapes[node.inputs[0]], analysis.shapes[output]
    rank, op, attrs = len(before), node.op, node.attributes
    if op in ("Softmax", "LogSoftmax"):
        softmax_axis = attrs.get("axis", -1) % rank
        if softmax_axis == axis or (attrs.get("_coerce_2d") and softmax_axis < axis):
            raise NotPrunable(node, "normalises over the units")
        return axis
    if op in _REDUCTIONS or op == "Squeeze":
        axes = _static_ints(analysis, node, 1, "axes")
        if axes is None:
            axes = [i for i, d in enumerate(before) if d == 1] if op == "Squeeze" else list(range(rank))
        axes = [a % rank for a in axes]
        if axis in axes:
            raise NotPrunable(node, "reduces over the units")
        keep = op != "Squeeze" and attrs.get("keepdims", 1)
        return axis if keep else axis - sum(a < axis for a in axes)
    if op == "Unsqueeze":
        inserted = {a % len(after) for a in _static_ints(analysis, node, 1, "axes") or []}
        return [i for i in range(len(after)) if i not in inserted][axis]
    if op == "Slice":
        starts = _static_ints(analysis, node, 1, "starts") or []
        axes = _static_ints(analysis, node, 3, "axes")
        if axis in [a % rank for a in (axes if axes is not None else range(len(starts)))]:
            raise NotPrunable(node, "slices the unit axis (a subset, or the units in another order)")
    if op == "Pad":
        pads = _static_ints(analysis, node, 1, "pads") or []
        axes = [a % rank for a in (_static_ints(analysis, node, 3, "axes") or range(rank))]
        if axis in axes and (pads[axes.index(axis)] or pads[len(axes) + axes.index(axis)]):
            raise NotPrunable(node, "pads the unit axis")
    if op == "Gather":
        gathered = attrs.get("axis", 0) % rank
        if gathered == axis:
            raise NotPrunable(node, "selects some of the units")
        return axis if gathered > axis else axis - rank + len(after)
    offset = len(after) - rank  # Expand may add leading axes; the others keep the rank
    if offset < 0 or after[axis + offset] != before[axis]:
        raise NotPrunable(node, "changes the size of the unit axis")
    return axis + offset


def _static_ints(analysis: _Analysis, node: GraphNode, position: int, attribute: str) -> list[int] | None:
    """An operator's axes, from its attribute or a constant input; None when it has neither (all axes)."""
    if attribute in node.attributes:
        return list(node.attributes[attribute])
    if position < len(node.inputs) and node.inputs[position]:
        name = node.inputs[position]
        if name not in analysis.spec.constants:
            raise NotPrunable(node, "takes axes computed at run time")
        return [int(v) for v in analysis.spec.constants[name].array().reshape(-1)]
    return None


def _frozen_groups(analysis: _Analysis) -> set[str]:
    """Groups that reach the graph's output (the logits) cannot lose units; nothing may read them."""
    layout = _layout_of(analysis, analysis.spec.output)
    frozen = {s.group for s in layout.segments} if layout is not None else set()
    for _, segments in analysis.readers:
        if any(analysis.find(s.group) in frozen for s in segments):
            raise NotPrunable(analysis.spec.nodes[-1], "reads units that are also the graph's output")
    return frozen


def _unit_graph(analysis: _Analysis, frozen: set[str]) -> UnitGraph:
    roots = [name for name in analysis.parent if analysis.find(name) == name and name not in frozen]
    groups = tuple(
        UnitGroup(root, analysis.sizes[root], tuple(dict.fromkeys(analysis.writers[root]))) for root in roots
    )
    readers = tuple(
        Reader(key, tuple(Segment(analysis.find(s.group), s.span) for s in segments))
        for key, segments in analysis.readers
    )

    def rebuild(kept: dict[str, int], _copies: dict) -> GraphSpec:
        return _rebuilt(analysis, {**{g: analysis.sizes[g] for g in frozen}, **kept})

    return UnitGraph(groups, readers, rebuild)


def _rebuilt(analysis: _Analysis, kept: dict[str, int]) -> GraphSpec:
    """The spec with every layer sized to the units kept, and reshape constants that name a unit axis updated."""
    spec = analysis.spec
    width = {node.layer: kept[analysis.find(node.layer)] for node in spec.nodes if node.layer in analysis.parent}
    input_width = {
        key.rsplit(".", 1)[0]: sum(kept[analysis.find(s.group)] * s.span for s in segments)
        for key, segments in analysis.readers
    }
    nodes = list(spec.nodes)
    constants = dict(spec.constants)
    for index, node in enumerate(spec.nodes):
        if node.layer is None:
            continue
        attrs = dict(node.attributes)
        if node.op == "conv":
            follows = _follower_width(analysis, node, kept)
            if follows is not None:  # a depthwise conv follows its input's channels
                attrs.update(in_channels=follows, out_channels=follows, group=follows)
            else:
                attrs["out_channels"] = width.get(node.layer, attrs["out_channels"])
                attrs["in_channels"] = input_width.get(node.layer, attrs["in_channels"])
        elif node.op == "linear":
            attrs["out_features"] = width.get(node.layer, attrs["out_features"])
            attrs["in_features"] = input_width.get(node.layer, attrs["in_features"])
        elif node.op == "batch_norm":
            attrs["num_features"] = _follower_width(analysis, node, kept) or attrs["num_features"]
        nodes[index] = node.model_copy(update={"attributes": attrs})
    for index, axis, layout in analysis.reshapes:
        node = nodes[index]
        target = spec.constants[node.inputs[1]].array()
        if target[axis] > 0:  # -1 and 0 adapt by themselves
            target[axis] = sum(kept[analysis.find(s.group)] * s.span for s in layout.segments)
            name = f"{node.inputs[1]}::pruned{index}"
            constants[name] = GraphConstant.of(np.asarray(target, dtype=np.int64))
            nodes[index] = node.model_copy(update={"inputs": (node.inputs[0], name, *node.inputs[2:])})
    return spec.model_copy(update={"nodes": tuple(nodes), "constants": constants})


def _follower_width(analysis: _Analysis, node: GraphNode, kept: dict[str, int]) -> int | None:
    """The kept width of the group a BatchNorm or depthwise conv follows, or None for a layer that follows none."""
    group = analysis.followers.get(node.layer)
    return None if group is None else kept[analysis.find(group)]
