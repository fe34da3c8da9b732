"""Rewrites of a graph that the analyses need: BatchNorm folded into its layer, and a new head width.

Both edit the spec (the structure) and move the weights to match, so the result is again an
ordinary GraphNetwork: the norm measures see folded layers exactly as they do for the built-in
families (measures/layers.py), and the Rademacher estimate trains a two-logit copy of any graph.
"""

from __future__ import annotations

import torch

from effcap.capacity.errors import InputError
from effcap.capacity.graphs.network import GraphNetwork
from effcap.capacity.graphs.spec import GraphNode, GraphSpec

# Operators between a head layer and the graph's output that keep its features where they are.
_FEATURE_PRESERVING = frozenset(
    {"Flatten", "Squeeze", "GlobalAveragePool", "GlobalMaxPool", "Dropout", "Relu", "Identity"}
)
# ... and those that act on the logits as a whole, which work for any number of them (the class axis is the last).
_OVER_THE_CLASSES = frozenset({"LogSoftmax", "Softmax"})


def _readers(spec: GraphSpec) -> dict[str, int]:
    counts: dict[str, int] = {spec.output: 1}
    for node in spec.nodes:
        for name in node.inputs:
            counts[name] = counts.get(name, 0) + 1
    return counts


@torch.no_grad()
def fold_batchnorm(network: GraphNetwork) -> GraphNetwork:
    """An eval-mode copy with every BatchNorm that directly follows a Conv or Linear folded into it.

    For y = γ (Wx + b − μ)/√(σ² + ε) + β: W' = W·γ/√(σ² + ε) per output channel,
    b' = (b − μ)·γ/√(σ² + ε) + β.
    A layer whose output is also read elsewhere keeps its BatchNorm (folding would change that reader).
    """
    spec, state = network.graph, network.state_dict()
    producers = {output: index for index, node in enumerate(spec.nodes) for output in node.outputs}
    readers = _readers(spec)
    nodes: list[GraphNode | None] = list(spec.nodes)
    for index, node in enumerate(spec.nodes):
        source = producers.get(node.inputs[0]) if node.op == "batch_norm" else None
        layer = nodes[source] if source is not None else None
        if layer is None or readers[node.inputs[0]] != 1 or not _foldable(layer, node):
            continue
        gamma, beta = state[f"{node.layer}.weight"], state[f"{node.layer}.bias"]
        mean, var = state[f"{node.layer}.running_mean"], state[f"{node.layer}.running_var"]
        scale = gamma / torch.sqrt(var + float(node.attributes["eps"]))
        weight = state[f"{layer.layer}.weight"]
        bias = state.get(f"{layer.layer}.bias", torch.zeros_like(mean))
        state[f"{layer.layer}.weight"] = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
        state[f"{layer.layer}.bias"] = (bias - mean) * scale + beta
        for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            state.pop(f"{node.layer}.{key}", None)
        nodes[source] = layer.model_copy(
            update={"outputs": node.outputs, "attributes": {**layer.attributes, "bias": 1}}
        )
        nodes[index] = None
    folded = GraphNetwork(spec.model_copy(update={"nodes": tuple(n for n in nodes if n is not None)}))
    folded.load_state_dict(state)
    return folded.to(next(network.parameters()).device).eval()


def _foldable(layer: GraphNode, norm: GraphNode) -> bool:
    """A conv's channels, or a linear's features on a (batch, features) input, are BatchNorm's channels."""
    if layer.op == "conv":
        return True
    return layer.op == "linear" and norm.attributes.get("rank") == 2


def _over_the_classes(node: GraphNode) -> bool:
    return (
        node.op in _OVER_THE_CLASSES
        and node.attributes.get("axis", -1) in (-1, 1)
        and not node.attributes.get("_coerce_2d")
    )


def with_num_classes(spec: GraphSpec, num_classes: int, field: str = "spec.architecture") -> GraphSpec:
    """The graph with its head layer (the Linear or Conv whose features become the output) resized."""
    producers = {output: node for node in spec.nodes for output in node.outputs}
    node = producers.get(spec.output)
    while node is not None and node.layer is None and (node.op in _FEATURE_PRESERVING or _over_the_classes(node)):
        node = producers.get(node.inputs[0])
    if node is None or node.op not in ("linear", "conv"):
        what = "a constant" if node is None else f"{node.op} node {node.name[:100]!r}"
        raise InputError(
            field,
            f"the graph's logits come from {what}, not from a Linear or Conv head, so it cannot be given "
            f"{num_classes} outputs",
            reason="UNSUPPORTED_GRAPH",
        )
    key = "out_features" if node.op == "linear" else "out_channels"
    resized = node.model_copy(update={"attributes": {**node.attributes, key: num_classes}})
    nodes = tuple(resized if n is node else n for n in spec.nodes)
    return spec.model_copy(update={"nodes": nodes, "num_classes": num_classes})
