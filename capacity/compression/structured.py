"""Structured pruning: neurons and channels removed physically, so the network really shrinks.

A unit's score is the size of what feeds it times the size of what it feeds. Feeding: the BatchNorm
scale and shift |γ| + |β| summed over the unit's writers when BatchNorm follows (it rescales the
conv away), else ‖incoming weights and bias‖₂; plus, for a residual stream, the feeding of the unit
its shortcut copies. Fed: ‖the columns reading the unit‖₂ over every reader, plus what the units it
is copied into feed. A unit with either side at zero contributes nothing and goes first. Every group
keeps the same share of its units (at least one); the smaller network is a valid spec of the same
family with its own weights, so its parameter count and forward time are measured, not inferred
from masks.
"""

from __future__ import annotations

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
    resnet_graph,
    small_cnn_graph,
)
from effcap.capacity.graphs.channels import unit_graph_of
from effcap.capacity.models.spec import (
    AlexNetSmallSpec,
    ArchitectureSpec,
    GraphSpec,
    InceptionSmallSpec,
    LeNet5Spec,
    MLPSpec,
    ResNet20Spec,
    SmallCNNSpec,
)

WRITER_SUFFIXES = ("weight", "bias", "running_mean", "running_var")


@dataclass(frozen=True)
class PrunedNetwork:
    spec: ArchitectureSpec
    state: dict[str, torch.Tensor]
    group_sizes: dict[str, tuple[int, int]]  # group -> (units before, units kept): the kept sets' code length


def unit_graph(spec: ArchitectureSpec, state: dict[str, torch.Tensor]) -> UnitGraph:
    if isinstance(spec, GraphSpec):
        return unit_graph_of(spec)  # InputError naming the node when the graph cannot be pruned exactly
    if isinstance(spec, MLPSpec):
        return mlp_graph(spec)
    if isinstance(spec, SmallCNNSpec):
        return small_cnn_graph(spec)
    if isinstance(spec, LeNet5Spec):
        return lenet5_graph(spec, state["classifier.1.weight"].shape[1])
    if isinstance(spec, AlexNetSmallSpec):
        return alexnet_small_graph(spec, state["classifier.1.weight"].shape[1])
    if isinstance(spec, InceptionSmallSpec):
        return inception_small_graph(spec)
    if isinstance(spec, ResNet20Spec):
        return resnet_graph(spec)
    raise ValueError(f"no unit graph for family {spec.family}")


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
            squared[segment.group] += columns[start : start + width].reshape(-1, segment.span).sum(dim=1)
            start += width
    fed = {name: value.sqrt() for name, value in squared.items()}
    for group in reversed(graph.groups):  # backward: a copy's readers also read its source
        if group.copies is not None:
            source, sources = group.copies
            targets = torch.tensor(sources, device=device)
            fed[source] = fed[source].index_add(0, targets[targets >= 0], fed[group.name][targets >= 0])
    return {name: feeding[name] * fed[name] for name in feeding}


def _writer_magnitude(group: UnitGroup, state: dict[str, torch.Tensor]) -> torch.Tensor:
    norms = [w for w in group.writers if f"{w}.running_var" in state]
    if norms:
        return sum(state[f"{w}.weight"].double().abs() + state[f"{w}.bias"].double().abs() for w in norms)
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
