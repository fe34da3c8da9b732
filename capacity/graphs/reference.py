"""Evaluate an ONNX graph with onnxruntime (or the ONNX reference evaluator) in a child process.

`python -m effcap.capacity.graphs.reference DIR` reads DIR/model.onnx, DIR/input.npy and
DIR/names.json (the values wanted) and writes DIR/outputs.npz and DIR/evaluator.txt. It runs in
its own process because a graph is client data and onnxruntime is native code: whatever the
graph does to it (a crash, a hang), the server only sees a failed child, which verify.py turns
into a named error. It imports neither torch nor effcap's library, so it starts quickly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def evaluate(model_bytes: bytes, x: np.ndarray, input_name: str, names: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """The wanted values for input `x`, and which evaluator computed them."""
    errors = []
    try:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # Unoptimised, so every node runs as written and each requested value is the node's own.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        results = session.run(names, {input_name: x})
        return dict(zip(names, results)), f"onnxruntime {onnxruntime.__version__}"
    except Exception as error:  # noqa: BLE001 - any failure falls back to the reference evaluator
        errors.append(f"onnxruntime: {str(error)[:300]}")
    try:
        import onnx
        from onnx.reference import ReferenceEvaluator

        results = ReferenceEvaluator(onnx.load_from_string(model_bytes)).run(names, {input_name: x})
        return dict(zip(names, results)), f"onnx.reference {onnx.__version__}"
    except Exception as error:  # noqa: BLE001
        errors.append(f"onnx.reference: {str(error)[:300]}")
    raise RuntimeError("; ".join(errors))


def main(argv: list[str]) -> int:
    folder = Path(argv[1])
    request = json.loads((folder / "names.json").read_text())
    x = np.load(folder / "input.npy", allow_pickle=False)
    try:
        outputs, evaluator = evaluate((folder / "model.onnx").read_bytes(), x, request["input"], request["names"])
    except RuntimeError as error:
        (folder / "error.txt").write_text(str(error))
        return 3
    np.savez(folder / "outputs.npz", **{f"v{i}": np.asarray(outputs[name]) for i, name in enumerate(request["names"])})
    (folder / "evaluator.txt").write_text(evaluator)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
