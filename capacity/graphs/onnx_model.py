"""An ONNX file as a checked checkpoint: read within limits, translated, verified against onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from effcap.capacity.graphs.onnx_import import ImportedGraph, import_onnx, read_onnx_model
from effcap.capacity.graphs.onnx_wire import OnnxLimits, looks_like_onnx
from effcap.capacity.graphs.verify import Verification, verify_import


@dataclass(frozen=True)
class OnnxProvenance:
    """Where an imported network came from and how closely the translation matches it (for the report)."""

    opset: int
    producer: str
    onnx_nodes: int
    # The batch size the graph fixes, or None when its batch axis is symbolic.
    export_batch: int | None
    verification: Verification
    # Warnings about the export for the report (onnx_import._export_notes).
    notes: tuple[str, ...] = ()


def is_onnx_file(path: Path | str) -> bool:
    """Whether the file starts like an ONNX model (and not like safetensors, whose 9th byte is '{')."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    return looks_like_onnx(head) and head[8:9] != b"{"


def load_onnx(
    path: Path | str, limits: OnnxLimits = OnnxLimits(), field: str = "model"
) -> tuple[ImportedGraph, OnnxProvenance]:
    """Translate and verify; InputError names what is refused (an operator, a node that diverges, a limit)."""
    model = read_onnx_model(path, limits, field)
    graph = import_onnx(model, field)
    verification = verify_import(model, graph, field)
    provenance = OnnxProvenance(
        graph.opset, graph.producer, graph.onnx_nodes, graph.export_batch, verification, graph.notes
    )
    return graph, provenance
