"""A bounded look at an ONNX file's protobuf wire format, before anything parses it.

A client's .onnx is untrusted. Before protobuf decodes it (materialising every weight), we walk
the top-level records — the ModelProto, its GraphProto, each initializer's header — with nothing
but length-prefixed skips, to refuse what we never accept: external data (weights in side files,
whose paths have had traversal CVEs), sparse initializers, local functions, and graphs over the
configured node count or initializer bytes. Field numbers are onnx.proto3's.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass

from effcap.capacity.graphs.export_call import ONNX_EXPORT_CALL

Buffer = bytes | mmap.mmap

# ModelProto
_IR_VERSION, _GRAPH, _FUNCTIONS = 1, 7, 25
# GraphProto
_NODE, _INITIALIZER, _SPARSE_INITIALIZER = 1, 5, 15
# TensorProto
_TENSOR_NAME, _EXTERNAL_DATA, _DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class OnnxLimits:
    """What a server accepts before parsing a graph's weights (`effcap serve --max-graph-nodes`,
    `--max-graph-weight-bytes`). 20k nodes is ten times an ImageNet ResNet-152's export."""

    max_nodes: int = 20_000
    max_weight_bytes: int = 2 << 30


class WireError(ValueError):
    """The bytes are not an ONNX model we accept; the message says what and where."""


@dataclass(frozen=True)
class WireSummary:
    ir_version: int
    node_count: int
    initializer_count: int
    initializer_bytes: int


def _varint(data: Buffer, position: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    for _ in range(10):
        if position >= end:
            raise WireError("the file ends inside a number (truncated?)")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    raise WireError("a malformed number (more than 10 bytes)")


def _fields(data: Buffer, start: int, end: int, where: str) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value, end) of one message's records in data[start:end].

    For a length-delimited record the value is its first byte's offset and `end` its end; for
    numbers the value itself. Offsets, not views: an mmap must close with no views left on it."""
    position = start
    while position < end:
        key, position = _varint(data, position, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError(f"{where}: a record with field number 0")
        if wire_type == _VARINT:
            value, position = _varint(data, position, end)
            yield number, wire_type, value, position
        elif wire_type in (_FIXED64, _FIXED32):
            size = 8 if wire_type == _FIXED64 else 4
            if position + size > end:
                raise WireError(f"{where}: the file ends inside a fixed-size field (truncated?)")
            yield number, wire_type, int.from_bytes(data[position : position + size], "little"), position + size
            position += size
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(data, position, end)
            if position + length > end:
                raise WireError(
                    f"{where}: field {number} declares {length} bytes but only {end - position} remain (truncated?)"
                )
            yield number, wire_type, position, position + length
            position += length
        else:
            raise WireError(f"{where}: wire type {wire_type} (protobuf groups) is not used by ONNX")


def scan_onnx(data: Buffer, limits: OnnxLimits) -> WireSummary:
    """Check the file's outline against the limits; raises WireError naming the first problem."""
    ir_version, graphs = None, []
    for number, wire_type, value, end in _fields(data, 0, len(data), "model"):
        if number == _IR_VERSION and wire_type == _VARINT:
            ir_version = value
        elif number == _GRAPH and wire_type == _LENGTH_DELIMITED:
            graphs.append((value, end))
        elif number == _FUNCTIONS:
            raise WireError(
                "model.functions: graphs with local functions are not supported (export without custom functions)"
            )
    if ir_version is None or len(graphs) != 1:
        raise WireError("not an ONNX model: it needs one ir_version and one graph")
    nodes = initializers = initializer_bytes = 0
    for number, wire_type, value, end in _fields(data, *graphs[0], "model.graph"):
        if wire_type != _LENGTH_DELIMITED:
            continue
        if number == _NODE:
            nodes += 1
            if nodes > limits.max_nodes:
                raise WireError(f"model.graph: more than {limits.max_nodes:,} nodes (the server's --max-graph-nodes)")
        elif number == _SPARSE_INITIALIZER:
            raise WireError("model.graph.sparse_initializer: sparse initializers are not supported")
        elif number == _INITIALIZER:
            initializers += 1
            initializer_bytes += end - value
            if initializer_bytes > limits.max_weight_bytes:
                raise WireError(
                    f"model.graph.initializer: more than {limits.max_weight_bytes:,} bytes of weights (the "
                    "server's --max-graph-weight-bytes)"
                )
            _refuse_external(data, value, end, initializers - 1)
    return WireSummary(ir_version, nodes, initializers, initializer_bytes)


def _refuse_external(data: Buffer, start: int, end: int, index: int) -> None:
    name, external = "", False
    for number, wire_type, value, stop in _fields(data, start, end, f"model.graph.initializer[{index}]"):
        if number == _TENSOR_NAME and wire_type == _LENGTH_DELIMITED:
            name = bytes(data[value : min(stop, value + 100)]).decode("utf-8", "replace")
        external |= number == _EXTERNAL_DATA or (
            number == _DATA_LOCATION and wire_type == _VARINT and value == _EXTERNAL
        )
    if external:
        raise WireError(
            f"model.graph.initializer[{index}] ({name!r}): weights stored as external data (side files named by path) "
            "are refused. torch.onnx.export's default (dynamo) exporter writes them for every model; the "
            f"TorchScript exporter keeps them in the file under 2 GB: {ONNX_EXPORT_CALL}"
        )


def looks_like_onnx(head: bytes) -> bool:
    """Whether a file's first bytes could start an ONNX ModelProto: exporters write ir_version (field 1) first."""
    return len(head) >= 2 and head[0] == (_IR_VERSION << 3 | _VARINT) and 1 <= head[1] <= 0x7F
