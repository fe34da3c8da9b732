"""Checkpoints as data: safetensors weights checked against a declarative architecture spec, or an ONNX graph.

Nothing here can execute code from the file: safetensors has no code path, and the architecture
comes from a JSON spec (the request's, or the file's "effcap.arch" metadata entry); an ONNX
graph is translated into a spec of the `graph` family from an allow-list of operators
(capacity/graphs/), never run as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from effcap.capacity.errors import InputError
from effcap.capacity.graphs.onnx_model import OnnxProvenance, is_onnx_file, load_onnx
from effcap.capacity.graphs.onnx_wire import OnnxLimits
from effcap.capacity.graphs.spec import GraphSpec
from effcap.capacity.json_values import load_json
from effcap.capacity.models import ArchitectureSpec, build_model, parse_architecture
from effcap.capacity.programs import program_refusal

ARCH_METADATA_KEY = "effcap.arch"
# Floating dtypes accepted for weights (float8 formats are not: torch cannot even check them for NaN).
WEIGHT_DTYPES = frozenset({torch.float32, torch.float64, torch.float16, torch.bfloat16})


@dataclass(frozen=True)
class Checkpoint:
    architecture: ArchitectureSpec
    state_dict: dict[str, torch.Tensor]
    # Set when the checkpoint was an ONNX graph.
    onnx: OnnxProvenance | None = None


def save_checkpoint(path: Path | str, architecture: ArchitectureSpec, state_dict: dict[str, torch.Tensor]) -> None:
    """Write weights with the architecture embedded, so the file alone describes the model."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    save_file(tensors, str(path), metadata={ARCH_METADATA_KEY: architecture.model_dump_json()})


def load_checkpoint(
    path: Path | str,
    architecture: dict[str, Any] | None = None,
    field: str = "model",
    onnx_limits: OnnxLimits = OnnxLimits(),
) -> Checkpoint:
    """Load and verify a safetensors checkpoint or an ONNX model.

    `architecture` (a JSON object) overrides the embedded metadata. Every tensor must match the
    spec's module in name, shape and floating dtype; otherwise InputError names the tensor. An ONNX
    model carries its own architecture: an override must then be that same graph.
    """
    refusal = program_refusal(path)
    if refusal is not None:
        raise InputError(field, refusal[1], reason=refusal[0])
    if is_onnx_file(path):
        return _load_onnx(path, architecture, field, onnx_limits)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            spec = _resolve_architecture(architecture, metadata, field)
            expected = build_model(spec, device="meta").state_dict()
            # Integer buffers are counters (BatchNorm's num_batches_tracked): kept when present, never required.
            present = set(handle.keys())
            counters = {name for name, reference in expected.items() if not reference.is_floating_point()}
            expected = {name: ref for name, ref in expected.items() if name not in counters or name in present}
            _check_tensor_names(present, set(expected), field)
            for name, reference in expected.items():
                shape = list(handle.get_slice(name).get_shape())
                if shape != list(reference.shape):
                    raise InputError(
                        f"{field}.{name}",
                        f"has shape {shape} but the architecture ({_describe(spec)}) expects {list(reference.shape)}",
                        reason="CHECKPOINT_SPEC_MISMATCH",
                    )
            state_dict = {name: handle.get_tensor(name) for name in expected}
    except SafetensorError as exc:
        raise InputError(field, f"not a readable safetensors file: {exc}", reason="INVALID_CHECKPOINT") from None
    checked = {}
    for name, tensor in state_dict.items():
        if name in counters:
            if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
                raise InputError(f"{field}.{name}", f"has dtype {tensor.dtype}; a counter is one integer", reason="CHECKPOINT_SPEC_MISMATCH")
            checked[name] = tensor.long()
            continue
        if tensor.dtype not in WEIGHT_DTYPES:
            raise InputError(f"{field}.{name}", f"has dtype {tensor.dtype}; weights must be float32, float64, float16 or bfloat16", reason="CHECKPOINT_SPEC_MISMATCH")
        # Checked after the cast: a float64 weight of 1e300 is finite but becomes inf in float32.
        checked[name] = tensor.float()
        if not torch.isfinite(checked[name]).all():
            raise InputError(f"{field}.{name}", "contains NaN or infinite values, or values beyond float32's range (±3.4e38)", reason="CHECKPOINT_NOT_FINITE")
    return Checkpoint(spec, checked)


def _load_onnx(path: Path | str, architecture: dict[str, Any] | None, field: str, limits: OnnxLimits) -> Checkpoint:
    graph, provenance = load_onnx(path, limits, field)
    if architecture and parse_architecture(architecture, "spec.architecture") != graph.spec:
        raise InputError(
            "spec.architecture",
            f"{field} is an ONNX graph, which describes its own architecture; "
            "leave spec.architecture unset (or give the same graph)",
            reason="ARCHITECTURE_CONFLICT",
        )
    return Checkpoint(graph.spec, graph.state_dict, provenance)


def _resolve_architecture(override: dict[str, Any] | None, metadata: dict[str, str], field: str) -> ArchitectureSpec:
    if override:
        return parse_architecture(override, "spec.architecture")
    if ARCH_METADATA_KEY not in metadata:
        raise InputError(
            "spec.architecture",
            f"the checkpoint carries no '{ARCH_METADATA_KEY}' metadata, so the request must describe the architecture "
            "(effcap audit --arch spec.json; docs/architectures.md)",
            reason="ARCHITECTURE_MISSING",
        )
    embedded = load_json(metadata[ARCH_METADATA_KEY], f"{field}.metadata.{ARCH_METADATA_KEY}", reason="INVALID_SPEC")
    return parse_architecture(embedded, f"{field}.metadata.{ARCH_METADATA_KEY}")


def _check_tensor_names(present: set[str], expected: set[str], field: str) -> None:
    missing, unexpected = sorted(expected - present), sorted(present - expected)
    if missing:
        # The names found beside the names wanted: `1.weight` for `hidden.0.weight` means an nn.Sequential's
        # state_dict saved for a family whose modules are named (docs/architectures.md lists the names).
        found = f"; the checkpoint has instead: {_first_names(unexpected)}" if unexpected else ""
        message = f"missing {len(missing)} tensors required by the architecture: {_first_names(missing)}{found}"
        raise InputError(field, message, reason="CHECKPOINT_SPEC_MISMATCH")
    if unexpected:
        raise InputError(field, f"{len(unexpected)} tensors are not part of the architecture: {_first_names(unexpected)}", reason="CHECKPOINT_SPEC_MISMATCH")


def _first_names(names: list[str], shown: int = 8) -> str:
    """A few names, not all: the message travels in a gRPC status, whose metadata is capped at 16 KiB."""
    head = ", ".join(name[:100] for name in names[:shown])
    return head + (f", and {len(names) - shown} more" if len(names) > shown else "")


def _describe(spec: ArchitectureSpec) -> str:
    if isinstance(spec, GraphSpec):  # a graph's fields (nodes, constants) would fill the whole message
        return spec.describe()
    return ", ".join(f"{k}={v}" for k, v in spec.model_dump().items())
