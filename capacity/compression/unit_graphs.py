"""Which units (neurons, channels) of each family can be removed together, and what reads them.

Structured pruning needs the graph's couplings, not just its layers: a unit of a residual stream is
written by the stem and by every block of its stage, and read by every block of the stage, by the
next stage's first block and (through the parameter-free shortcut) copied into the next stream; a
channel of an Inception concatenation is read at an offset by every conv of the next module and,
through a downsample module's max-pool, by the module after it too. A `UnitGraph` lists those
couplings once per family so one removal routine (structured.py) serves all of them, and says how
to write the smaller network back as a spec of the same family.

Pre-activation networks (WRN) read a stream through a BatchNorm and ReLU before each conv: that
BatchNorm is indexed by the stream's units, so a `Reader` names it and it is cut with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from effcap.capacity.models.inception import MODULE_KINDS
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


@dataclass(frozen=True)
class Segment:
    """`group`'s units as consecutive inputs of a reader; `span` inputs per unit (H·W after a flatten)."""

    group: str
    span: int = 1


@dataclass(frozen=True)
class UnitGroup:
    """Units removed together. `writers` are module prefixes whose outputs are these units (a Linear or
    Conv: weight rows and bias; a BatchNorm: affine parameters and running statistics). `copies`
    names a group whose unit `sources[i]` is added, parameter-free, to unit i (-1: none)."""

    name: str
    size: int
    writers: tuple[str, ...]
    copies: tuple[str, tuple[int, ...]] | None = None


@dataclass(frozen=True)
class Reader:
    """A weight whose input axis (axis 1) is the concatenation of `layout`. `norm` names the BatchNorm (then
    ReLU) its input passes through first, in pre-activation blocks; the layout is then one group's units."""

    key: str
    layout: tuple[Segment, ...]
    norm: str | None = None


@dataclass(frozen=True)
class UnitGraph:
    groups: tuple[UnitGroup, ...]  # in forward order: a group's copied source comes before it
    readers: tuple[Reader, ...]
    rebuild: Callable[[dict[str, int], dict[str, tuple[int, ...]]], ArchitectureSpec]  # kept sizes, new copy maps -> spec

    @property
    def sizes(self) -> dict[str, int]:
        return {g.name: g.size for g in self.groups}

    def reader_norms(self) -> dict[str, str]:
        """BatchNorm prefix -> the group whose units it normalises, for every reader's norm."""
        norms: dict[str, str] = {}
        for reader in self.readers:
            if reader.norm is None:
                continue
            [segment] = reader.layout
            if norms.setdefault(reader.norm, segment.group) != segment.group:
                raise ValueError(f"{reader.norm} normalises both {norms[reader.norm]} and {segment.group}")
        return norms


def _chain(names: list[str], sizes: tuple[int, ...], writers: list[tuple[str, ...]], readers: list[str], spans: list[int]) -> tuple[tuple[UnitGroup, ...], tuple[Reader, ...]]:
    """Groups that each feed the next layer only (MLPs, plain conv stacks, classifier heads)."""
    groups = tuple(UnitGroup(n, s, w) for n, s, w in zip(names, sizes, writers))
    return groups, tuple(Reader(r, (Segment(n, span),)) for n, r, span in zip(names, readers, spans))


def mlp_graph(spec: MLPSpec) -> UnitGraph:
    depth = len(spec.hidden_sizes)
    names = [f"hidden.{i}" for i in range(depth)]
    readers = [f"hidden.{i + 1}.weight" for i in range(depth - 1)] + ["head.weight"]
    groups, reads = _chain(names, spec.hidden_sizes, [(n,) for n in names], readers, [1] * depth)
    return UnitGraph(groups, reads, lambda kept, _: spec.model_copy(update={"hidden_sizes": tuple(kept[n] for n in names)}))


def small_cnn_graph(spec: SmallCNNSpec) -> UnitGraph:
    blocks = len(spec.channels)
    names = [f"block{i}" for i in range(blocks)]
    writers = [(f"features.{2 * i}.0", f"features.{2 * i}.1") if spec.batch_norm else (f"features.{2 * i}.0",) for i in range(blocks)]
    readers = [f"features.{2 * (i + 1)}.0.weight" for i in range(blocks - 1)] + ["head.weight"]
    groups, reads = _chain(names, spec.channels, writers, readers, [1] * blocks)
    return UnitGraph(groups, reads, lambda kept, _: spec.model_copy(update={"channels": tuple(kept[n] for n in names)}))


def _conv_then_fc_graph(spec: LeNet5Spec | AlexNetSmallSpec, convs: list[tuple[str, ...]], conv_readers: list[str], flat_inputs: int) -> UnitGraph:
    """Two convs, a flatten, two hidden Linear layers and the head (LeNet-5, the small AlexNet)."""
    names = ["conv1", "conv2", "fc1", "fc2"]
    sizes = (*spec.conv_channels, *spec.fc_sizes)
    writers = [*convs, ("classifier.1",), ("classifier.3",)]
    readers = [*conv_readers, "classifier.3.weight", "classifier.5.weight"]
    spans = [1, flat_inputs // spec.conv_channels[1], 1, 1]
    groups, reads = _chain(names, sizes, writers, readers, spans)

    def rebuild(kept: dict[str, int], _: dict) -> ArchitectureSpec:
        return spec.model_copy(update={"conv_channels": (kept["conv1"], kept["conv2"]), "fc_sizes": (kept["fc1"], kept["fc2"])})

    return UnitGraph(groups, reads, rebuild)


def lenet5_graph(spec: LeNet5Spec, flat_inputs: int) -> UnitGraph:
    return _conv_then_fc_graph(spec, [("features.0",), ("features.3",)], ["features.3.weight", "classifier.1.weight"], flat_inputs)


def alexnet_small_graph(spec: AlexNetSmallSpec, flat_inputs: int) -> UnitGraph:
    """LRN mixes neighbouring channels, so a removed channel also leaves its neighbours' normalisation
    windows: the smaller network is close to, not exactly, the masked one (its accuracy is measured)."""
    convs = [(f"features.{i}.0.0", f"features.{i}.0.1") if spec.batch_norm else (f"features.{i}.0.0",) for i in range(2)]
    return _conv_then_fc_graph(spec, convs, ["features.1.0.0.weight", "classifier.1.weight"], flat_inputs)


def inception_small_graph(spec: InceptionSmallSpec) -> UnitGraph:
    def conv(prefix: str, name: str, size: int) -> UnitGroup:
        return UnitGroup(name, size, (f"{prefix}.0", f"{prefix}.1") if spec.batch_norm else (f"{prefix}.0",))

    widths = iter(spec.conv_widths)
    groups = [conv("features.0", "conv0", next(widths))]
    readers: list[Reader] = []
    layout: tuple[Segment, ...] = (Segment("conv0"),)
    for index, kind in enumerate(MODULE_KINDS, start=1):
        module = f"features.{index}"
        if kind == "inception":
            branches = [conv(f"{module}.branch1", f"conv{len(groups)}", next(widths)), conv(f"{module}.branch3", f"conv{len(groups) + 1}", next(widths))]
            readers += [Reader(f"{module}.branch1.0.weight", layout), Reader(f"{module}.branch3.0.weight", layout)]
            layout = tuple(Segment(b.name) for b in branches)
            groups += branches
        else:  # the max-pool passes its input's channels through, after the conv's
            groups.append(conv(f"{module}.conv", f"conv{len(groups)}", next(widths)))
            readers.append(Reader(f"{module}.conv.0.weight", layout))
            layout = (Segment(groups[-1].name), *layout)
    readers.append(Reader("head.weight", layout))
    names = [g.name for g in groups]
    return UnitGraph(tuple(groups), tuple(readers), lambda kept, _: spec.model_copy(update={"conv_widths": tuple(kept[n] for n in names)}))


def resnet_graph(spec: ResNet20Spec) -> UnitGraph:
    """Each block's inner channels (conv1 → bn1 → conv2) and each stage's residual stream."""
    n, maps = spec.blocks_per_stage, spec.shortcut_maps()
    stage_of = [b // n for b in range(3 * n)]
    streams = []
    for stage in range(3):
        writers = [w for b in range(3 * n) if stage_of[b] == stage for w in (f"blocks.{b}.conv2", f"blocks.{b}.bn2")]
        if stage == 0:
            writers = ["stem.0", "stem.1", *writers]
        copies = (f"stream{stage - 1}", maps[stage - 1]) if stage > 0 else None
        streams.append(UnitGroup(f"stream{stage}", spec.stage_widths[stage], tuple(writers), copies))
    inner = [UnitGroup(f"inner{b}", width, (f"blocks.{b}.conv1", f"blocks.{b}.bn1")) for b, width in enumerate(spec.block_inner_widths())]
    readers = [Reader(f"blocks.{b}.conv2.weight", (Segment(f"inner{b}"),)) for b in range(3 * n)]
    # Block b reads the stream its predecessor wrote: the previous stage's for a stage's first block.
    readers += [Reader(f"blocks.{b}.conv1.weight", (Segment(f"stream{stage_of[b - 1] if b else 0}"),)) for b in range(3 * n)]
    readers.append(Reader("head.weight", (Segment("stream2"),)))

    def rebuild(kept: dict[str, int], copies: dict[str, tuple[int, ...]]) -> ArchitectureSpec:
        return spec.model_copy(
            update={
                "stage_widths": tuple(kept[f"stream{s}"] for s in range(3)),
                "inner_widths": tuple(kept[g.name] for g in inner),
                "shortcut_sources": (copies["stream1"], copies["stream2"]),
            }
        )

    return UnitGraph((*streams, *inner), tuple(readers), rebuild)


def vgg_graph(spec: VGGSpec, flat_inputs: int) -> UnitGraph:
    """Each conv's channels, read by the next conv (max-pools act per channel) or, flattened, by the classifier."""
    convs = [(width, index) for width, index in feature_indices(spec) if width != "M"]
    names = [f"conv{i}" for i in range(len(convs))]
    writers = [(f"features.{i}", f"features.{i + 1}") if spec.batch_norm else (f"features.{i}",) for _, i in convs]
    readers = [f"features.{i}.weight" for _, i in convs[1:]] + ["classifier.weight"]
    spans = [1] * (len(convs) - 1) + [flat_inputs // convs[-1][0]]
    groups, reads = _chain(names, tuple(w for w, _ in convs), writers, readers, spans)

    def rebuild(kept: dict[str, int], _: dict) -> ArchitectureSpec:
        widths = iter(kept[n] for n in names)
        layers = tuple("M" if layer == "M" else next(widths) for layer in spec.layers())
        return spec.model_copy(update={"config": layers, "width_divisor": 1})

    return UnitGraph(groups, reads, rebuild)


def projection_resnet_graph(spec: ResNetSpec) -> UnitGraph:
    """Each block's inner channels (conv1 → bn1 → conv2) and each stage's residual stream, which the stem
    (stage 1) or the projection shortcut's conv and BN (later stages) write, and every block's conv2 and bn2."""
    stages = [[f"layer{s + 1}.{b}" for b in range(n)] for s, n in enumerate(spec.blocks_per_stage)]
    streams, readers = [], []
    for s, blocks in enumerate(stages):
        start = ("conv1", "bn1") if s == 0 else (f"{blocks[0]}.downsample.0", f"{blocks[0]}.downsample.1")
        writers = (*start, *(w for block in blocks for w in (f"{block}.conv2", f"{block}.bn2")))
        streams.append(UnitGroup(f"stream{s}", spec.stream_widths()[s], writers))
        read = f"stream{s - 1}" if s else "stream0"  # a stage's first block reads the stream before it
        readers.append(Reader(f"{blocks[0]}.conv1.weight", (Segment(read),)))
        if s:
            readers.append(Reader(f"{blocks[0]}.downsample.0.weight", (Segment(read),)))
        readers += [Reader(f"{block}.conv1.weight", (Segment(f"stream{s}"),)) for block in blocks[1:]]
    readers.append(Reader("fc.weight", (Segment(streams[-1].name),)))
    blocks = [block for stage in stages for block in stage]
    widths = spec.block_inner_widths()
    inner = [UnitGroup(f"inner{i}", widths[i], (f"{b}.conv1", f"{b}.bn1")) for i, b in enumerate(blocks)]
    readers += [Reader(f"{b}.conv2.weight", (Segment(f"inner{i}"),)) for i, b in enumerate(blocks)]

    def rebuild(kept: dict[str, int], _: dict) -> ArchitectureSpec:
        stage_widths, inner_widths = tuple(kept[g.name] for g in streams), tuple(kept[g.name] for g in inner)
        return spec.model_copy(update={"stage_widths": stage_widths, "inner_widths": inner_widths})

    return UnitGraph((*streams, *inner), tuple(readers), rebuild)


def wide_resnet_graph(spec: WideResNetSpec) -> UnitGraph:
    """Pre-activation (Zagoruyko and Komodakis 2016): a stream is written by convs only (the stem or the
    projection shortcut, and every block's conv2) and read through each reading block's bn1 + ReLU (also by the
    shortcut conv, which projects the pre-activated input) and the final bn; inner channels are conv1 → bn2."""
    n = spec.blocks_per_stage
    stages = [[f"layer{s + 1}.{b}" for b in range(n)] for s in range(3)]
    groups: list[UnitGroup] = []
    if spec.stage1_projection:
        groups.append(UnitGroup("stem", spec.stem_channels(), ("conv1",)))
    readers: list[Reader] = []
    for s, blocks in enumerate(stages):
        projected = s > 0 or spec.stage1_projection
        read = groups[-1].name if projected else f"stream{s}"
        start = (f"{blocks[0]}.shortcut",) if projected else ("conv1",)
        writers = (*start, *(f"{block}.conv2" for block in blocks))
        groups.append(UnitGroup(f"stream{s}", spec.stream_widths()[s], writers))
        readers.append(Reader(f"{blocks[0]}.conv1.weight", (Segment(read),), norm=f"{blocks[0]}.bn1"))
        if projected:
            readers.append(Reader(f"{blocks[0]}.shortcut.weight", (Segment(read),), norm=f"{blocks[0]}.bn1"))
        readers += [Reader(f"{b}.conv1.weight", (Segment(f"stream{s}"),), norm=f"{b}.bn1") for b in blocks[1:]]
    readers.append(Reader("fc.weight", (Segment("stream2"),), norm="bn"))
    blocks = [block for stage in stages for block in stage]
    widths = spec.block_inner_widths()
    inner = [UnitGroup(f"inner{i}", widths[i], (f"{b}.conv1", f"{b}.bn2")) for i, b in enumerate(blocks)]
    readers += [Reader(f"{b}.conv2.weight", (Segment(f"inner{i}"),)) for i, b in enumerate(blocks)]

    def rebuild(kept: dict[str, int], _: dict) -> ArchitectureSpec:
        update = {
            "stem_width": kept["stem" if spec.stage1_projection else "stream0"],
            "stage_widths": tuple(kept[f"stream{s}"] for s in range(3)),
            "inner_widths": tuple(kept[g.name] for g in inner),
        }
        return spec.model_copy(update=update)

    return UnitGraph((*groups, *inner), tuple(readers), rebuild)
