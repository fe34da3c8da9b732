"""Check an imported graph against the graph's own semantics, value by value.

The converted module and onnxruntime (or the ONNX reference evaluator, reference.py, in a child
process) compute every intermediate value for the same inputs, in inference mode; the first node
whose output differs beyond float tolerance is named, so a user (or we) can see exactly which
operator was translated wrongly. The module is then run at a second batch size, because a graph
that baked its export batch size into a reshape computes nonsense — or fails — at any other.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from effcap.capacity.errors import InputError
from effcap.capacity.graphs.export_call import ONNX_EXPORT_CALL
from effcap.capacity.graphs.network import GraphNetwork, GraphRunError
from effcap.capacity.graphs.onnx_import import ImportedGraph

# Largest accepted difference, relative to the value's scale: max|ours − reference| / max(1, max|reference|).
# float32 arithmetic in a different order (other conv algorithms, fused kernels) stays near 1e-6.
TOLERANCE = 1e-3
VERIFY_EXAMPLES = 3
REFERENCE_TIMEOUT_S = 300.0
DYNAMIC_EXPORT_HINT = f"export with a symbolic batch axis: {ONNX_EXPORT_CALL}"


@dataclass(frozen=True)
class Verification:
    evaluator: str
    examples: int
    values_compared: int
    # Of the logits: the largest absolute difference, and the largest scaled difference over every value compared.
    max_abs_difference: float
    max_scaled_difference: float


def verify_import(
    model, imported: ImportedGraph, field: str = "model", timeout_s: float = REFERENCE_TIMEOUT_S
) -> Verification:
    """Compare the module with the reference on seeded inputs; InputError names the first diverging node."""
    batch = imported.export_batch or VERIFY_EXAMPLES
    x = torch.randn(batch, *imported.spec.input_shape, generator=torch.Generator().manual_seed(0))
    try:
        network = GraphNetwork(imported.spec)
        network.load_state_dict(imported.state_dict)
        with torch.no_grad():
            ours = network.eval().values(x)
    except (GraphRunError, RuntimeError) as error:
        raise InputError(
            field, f"the translated graph cannot run on {batch} examples: {str(error)[:300]}", reason="INVALID_ONNX"
        ) from None
    producers = _producers(model)
    names = [name for name in producers if isinstance(ours.get(name), torch.Tensor) and ours[name].is_floating_point()]
    reference, evaluator = _reference_values(_inference_model(model, names), x.numpy(), model, names, field, timeout_s)
    worst = 0.0
    for name in names:
        difference = scaled_difference(ours[name].detach().numpy(), reference[name])
        if not difference <= TOLERANCE:
            index, node_name, op = producers[name]
            raise InputError(
                field,
                f"the converted graph diverges from {evaluator} at node {index} ({node_name[:100]!r}, {op}): value "
                f"{name[:100]!r} "
                f"differs by {difference:.3g} (tolerance {TOLERANCE:g}, relative to the value's scale)",
                reason="CONVERSION_MISMATCH",
            )
        worst = max(worst, difference)
    output = imported.spec.output
    logits_difference = float(np.abs(ours[output].numpy().astype(np.float64) - reference[output]).max())
    _check_batch_independence(network, x, ours[output], imported.export_batch, field)
    return Verification(evaluator, batch, len(names), logits_difference, worst)


def scaled_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    """max|ours − reference| / max(1, max|reference|); infinite when shapes or NaN positions differ."""
    reference = np.asarray(reference, dtype=np.float64)
    ours = np.asarray(ours, dtype=np.float64)
    if ours.shape != reference.shape:
        return math.inf
    both_nan = np.isnan(ours) & np.isnan(reference)
    gap = np.where(both_nan, 0.0, np.abs(ours - reference))
    if gap.size == 0:
        return 0.0
    return float(
        np.nan_to_num(gap, nan=np.inf).max() / max(1.0, float(np.nan_to_num(np.abs(reference), nan=0.0).max()))
    )


def _producers(model) -> dict[str, tuple[int, str, str]]:
    """Each value the graph computes → (node index, node name, op), in node order."""
    return {
        name: (index, node.name, node.op_type)
        for index, node in enumerate(model.graph.node)
        for name in node.output
        if name
    }


def _inference_model(model, names: list[str]):
    """The client's graph as the reference runs it: BatchNorm and Dropout in inference mode, and every
    value we compare exposed as an output. Only nodes, weights and the input are copied (no metadata,
    value_info or functions)."""
    import onnx
    from onnx import helper

    graph = model.graph
    nodes = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        if node.op_type == "BatchNormalization":
            del copy.output[1:]
            for attribute in copy.attribute:
                if attribute.name == "training_mode":
                    attribute.i = 0
        elif node.op_type == "Dropout" and len(copy.input) > 2:
            del copy.input[2:]  # without training_mode, Dropout is the identity
        nodes.append(copy)
    initializer_names = {t.name for t in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializer_names]
    outputs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in names]
    clean = helper.make_graph(nodes, "effcap_reference", inputs, outputs, initializer=list(graph.initializer))
    opsets = [entry for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    return helper.make_model(clean, opset_imports=opsets, ir_version=model.ir_version)


def _reference_values(
    reference_model, x: np.ndarray, model, names: list[str], field: str, timeout_s: float
) -> tuple[dict[str, np.ndarray], str]:
    input_name = next(value.name for value in reference_model.graph.input)
    with tempfile.TemporaryDirectory(prefix="effcap-reference-") as folder:
        root = Path(folder)
        (root / "model.onnx").write_bytes(reference_model.SerializeToString())
        np.save(root / "input.npy", x)
        (root / "names.json").write_text(json.dumps({"input": input_name, "names": names}))
        try:
            done = subprocess.run(
                [sys.executable, "-m", "effcap.capacity.graphs.reference", str(root)],
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise InputError(
                field,
                f"the reference evaluation of the graph took over {timeout_s:.0f} s",
                reason="REFERENCE_EVALUATION_FAILED",
            ) from None
        if done.returncode != 0:
            detail = (
                (root / "error.txt").read_text()[:600]
                if (root / "error.txt").exists()
                else f"the evaluator exited with {done.returncode}"
            )
            raise InputError(
                field,
                f"the graph could not be evaluated by onnxruntime or the ONNX reference evaluator: {detail}",
                reason="REFERENCE_EVALUATION_FAILED",
            )
        with np.load(root / "outputs.npz", allow_pickle=False) as archive:
            values = {name: archive[f"v{i}"] for i, name in enumerate(names)}
        return values, (root / "evaluator.txt").read_text()


def _check_batch_independence(
    network: GraphNetwork, x: torch.Tensor, logits: torch.Tensor, export_batch: int | None, field: str
) -> None:
    """The module run on a batch of another size must give each example the same logits (inference mode)."""
    other = x[:1] if export_batch is None else torch.cat([x, x[:1]])
    try:
        with torch.no_grad():
            again = network(other)
    except GraphRunError as error:
        raise InputError(
            field,
            f"the graph fixes its batch size at {len(x)} ({error}); {DYNAMIC_EXPORT_HINT}",
            reason="FIXED_BATCH_SIZE",
        ) from None
    rows = min(len(other), len(x))
    if (
        again.shape != (len(other), *logits.shape[1:])
        or scaled_difference(again[:rows].numpy(), logits[:rows].numpy()) > TOLERANCE
    ):
        raise InputError(
            field,
            f"the graph's output for an example depends on the batch size (it was exported with batch {len(x)}); "
            f"{DYNAMIC_EXPORT_HINT}",
            reason="FIXED_BATCH_SIZE",
        )
