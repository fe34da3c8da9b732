"""Structured pruning: neurons and channels removed physically, so the network really shrinks.

A unit's score is the size of what feeds it times the size of what it feeds. Feeding: the BatchNorm
scale and shift |γ| + |β| summed over the unit's writers when BatchNorm follows (it rescales the
conv away), else ‖incoming weights and bias‖₂; plus, for a residual stream, the feeding of the unit
its shortcut copies. Fed: ‖the columns reading the unit‖₂ over every reader, plus what the units it
is copied into feed; in pre-activation networks (WRN) a stream unit reaches each reader through
that reader's BatchNorm, so those columns count scaled by its |γ| + |β| (and it is cut with the
stream). A unit with either side at zero contributes nothing and goes first. Every group keeps the
same share of its units (at least one); the smaller network is a valid spec of the same family with
its own weights, so its parameter count and forward time are measured, not inferred from masks.
Families without a unit graph (the ViT) are refused, naming the compressibility spec's field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from effcap.capacity.compression.unit_graphs import (
    Reader,
    UnitGraph,
    UnitGroup,
    alexnet_small_graph,
    inception_small_graph,
    lenet5_graph,
    mlp_graph,
    projection_resnet_graph,
    resnet_graph,
    small_cnn_graph,
    vgg_graph,
    wide_resnet_graph,
)
from effcap.capacity.errors import InputError
from effcap.capacity.graphs.channels import unit_graph_of
from effcap.capacity.models.spec import ArchitectureSpec, GraphSpec

WRITER_SUFFIXES = ("weight", "bias", "running_mean", "running_var")

# family -> its unit graph, from the spec and the checkpoint's state (where a flatten's size is read).
_UNIT_GRAPHS: dict[str, Callable[[ArchitectureSpec, dict[str, torch.Tensor]], UnitGraph]] = {
    "mlp": lambda spec, state: mlp_graph(spec),
    "small_cnn": lambda spec, state: small_cnn_graph(spec),
    "lenet5": lambda spec, state: lenet5_graph(spec, state["classifier.1.weight"].shape[1]),
    "alexnet_small": lambda spec, state: alexnet_small_graph(spec, state["classifier.1.weight"].shape[1]),
    "inception_small": lambda spec, state: inception_small_graph(spec),
    "resnet20": lambda spec, state: resnet_graph(spec),
    "vgg": lambda spec, state: vgg_graph(spec, state["classifier.weight"].shape[1]),
    "resnet": lambda spec, state: projection_resnet_graph(spec),
    "wide_resnet": lambda spec, state: wide_resnet_graph(spec),
    # An imported graph's units are found by a dependency analysis, which refuses (naming the node) a graph
    # whose units cannot be removed exactly.
    "graph": lambda spec, state: unit_graph_of(spec),
}
# Why a family has no unit graph, where there is more to say than that it has none.
_UNSUPPORTED_BECAUSE = {
    "vit": "its LayerNorms normalise every token over all channels of the residual stream, so removing any channel "
    "changes the others' outputs and no unit can be removed exactly; use the unstructured methods",
}


def check_structured_supported(architecture: ArchitectureSpec, methods: list[str]) -> None:
    """Refuse a compressibility spec that asks for structured pruning of a family that has no unit graph,
    naming the list entry, before any work starts."""
    if "structured" not in methods:
        return
    field = f"spec.compressibility.methods[{methods.index('structured')}]"
    if architecture.family not in _UNIT_GRAPHS:
        raise _unsupported(architecture, field)
    if isinstance(architecture, GraphSpec):  # the analysis itself says whether this graph's units come apart
        try:
            unit_graph_of(architecture)
        except InputError as error:
            raise InputError(field, error.message, reason=error.reason) from None


def _unsupported(architecture: ArchitectureSpec, field: str) -> InputError:
    why = _UNSUPPORTED_BECAUSE.get(architecture.family, "it has no unit graph (compression/unit_graphs.py)")
    message = f"structured pruning does not apply to family {architecture.family}: {why}"
    return InputError(field, message, reason="STRUCTURED_PRUNING_UNSUPPORTED")


@dataclass(frozen=True)
class PrunedNetwork:
    spec: ArchitectureSpec
    state: dict[str, torch.Tensor]
    group_sizes: dict[str, tuple[int, int]]  # group -> (units before, units kept): the kept sets' code length


def unit_graph(spec: ArchitectureSpec, state: dict[str, torch.Tensor]) -> UnitGraph:
    """The family's unit graph; InputError (on spec.compressibility.methods) for a family without one."""
    if spec.family not in _UNIT_GRAPHS:
        raise _unsupported(spec, "spec.compressibility.methods")
    return _UNIT_GRAPHS[spec.family](spec, state)


def structured_prune(spec: ArchitectureSpec, state: dict[str, torch.Tensor], fraction: float) -> PrunedNetwork:
    """The smaller network without the lowest-scoring `fraction` of units of every group."""
    graph = unit_graph(spec, state)
    scores = unit_scores(graph, state)
    keep = {g.name: _keep(scores[g.name], fraction) for g in graph.groups}
    small = dict(state)
    for group in graph.groups:
        for writer in group.writers:
            for suffix in WRITER_SUFFIXES:
                if f"{writer}.{suffix}" in small:
                    small[f"{writer}.{suffix}"] = small[f"{writer}.{suffix}"][keep[group.name]]
    for norm, group in graph.reader_norms().items():  # pre-activation BatchNorms go with the units they read
        for suffix in WRITER_SUFFIXES:
            small[f"{norm}.{suffix}"] = small[f"{norm}.{suffix}"][keep[group]]
    sizes = graph.sizes
    for reader in graph.readers:
        small[reader.key] = small[reader.key][:, _kept_columns(reader, keep, sizes)]
    copies = {g.name: _remapped_sources(g, keep) for g in graph.groups if g.copies is not None}
    kept_sizes = {name: len(kept) for name, kept in keep.items()}
    new_spec = graph.rebuild(kept_sizes, copies)
    return PrunedNetwork(type(spec).model_validate(new_spec.model_dump()), small, {g.name: (g.size, kept_sizes[g.name]) for g in graph.groups})


def unit_scores(graph: UnitGraph, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    feeding = {}
    for group in graph.groups:  # forward: a copied unit's feeding comes before the copy's
        feeding[group.name] = _writer_magnitude(group, state)
        if group.copies is not None:
            source, sources = group.copies
            feeding[group.name] = feeding[group.name] + _gather(feeding[source], sources)
    device = next(iter(state.values())).device
    squared = {g.name: torch.zeros(g.size, dtype=torch.float64, device=device) for g in graph.groups}
    sizes = graph.sizes
    for reader in graph.readers:
        columns = (state[reader.key].double() ** 2).transpose(0, 1).reshape(state[reader.key].shape[1], -1).sum(dim=1)
        start = 0
        for segment in reader.layout:
            width = sizes[segment.group] * segment.span
            read = columns[start : start + width].reshape(-1, segment.span).sum(dim=1)
            if reader.norm is not None:  # the unit reaches these columns scaled and shifted by the BatchNorm
                read = read * _norm_magnitude(state, reader.norm) ** 2
            squared[segment.group] += read
            start += width
    fed = {name: value.sqrt() for name, value in squared.items()}
    for group in reversed(graph.groups):  # backward: a copy's readers also read its source
        if group.copies is not None:
            source, sources = group.copies
            targets = torch.tensor(sources, device=device)
            fed[source] = fed[source].index_add(0, targets[targets >= 0], fed[group.name][targets >= 0])
    return {name: feeding[name] * fed[name] for name in feeding}


def _norm_magnitude(state: dict[str, torch.Tensor], norm: str) -> torch.Tensor:
    """|γ| + |β| per channel of a BatchNorm: what survives of a unit after it (zero for both: nothing)."""
    return state[f"{norm}.weight"].double().abs() + state[f"{norm}.bias"].double().abs()


def _writer_magnitude(group: UnitGroup, state: dict[str, torch.Tensor]) -> torch.Tensor:
    norms = [w for w in group.writers if f"{w}.running_var" in state]
    if norms:
        return sum(_norm_magnitude(state, w) for w in norms)
    squared = torch.zeros(group.size, dtype=torch.float64, device=state[f"{group.writers[0]}.weight"].device)
    for writer in group.writers:
        squared += (state[f"{writer}.weight"].double() ** 2).reshape(group.size, -1).sum(dim=1)
        if f"{writer}.bias" in state:
            squared += state[f"{writer}.bias"].double() ** 2
    return squared.sqrt()


def _gather(values: torch.Tensor, sources: tuple[int, ...]) -> torch.Tensor:
    index = torch.tensor(sources, device=values.device)
    return torch.where(index >= 0, values[index.clamp_min(0)], torch.zeros((), dtype=values.dtype, device=values.device))


def _keep(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    count = max(1, round(len(scores) * (1 - fraction)))
    return torch.sort(torch.topk(scores, count).indices).values


def _kept_columns(reader: Reader, keep: dict[str, torch.Tensor], sizes: dict[str, int]) -> torch.Tensor:
    columns, start = [], 0
    for segment in reader.layout:
        units = keep[segment.group]
        columns.append(start + (units[:, None] * segment.span + torch.arange(segment.span, device=units.device)).flatten())
        start += sizes[segment.group] * segment.span
    return torch.cat(columns)


def _remapped_sources(group: UnitGroup, keep: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The copy map in the smaller network: kept units read their source's new index, or nothing."""
    source, sources = group.copies
    new_index = {int(old): new for new, old in enumerate(keep[source])}
    return tuple(new_index.get(sources[int(unit)], -1) for unit in keep[group.name])
