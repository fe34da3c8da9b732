"""The input-validation process: where an audit's inputs are decompressed, inflated and cross-checked.

    python -m effcap.service.inflation_worker CAP_BYTES

The server starts it (inflation.py) so that a small compressed upload that inflates into gigabytes
costs this process, not the server. After importing the library it caps its own data segment
(RLIMIT_DATA: heap and private mappings, which is where numpy and torch allocate) at what the imports
took plus CAP_BYTES, so the cap is counted in bytes of memory, whatever the arrays' values or dtypes.
An allocation beyond it fails here with MemoryError; the answer names the input at fault and the
process exits, so the next request gets a fresh one.

Requests and answers are JSON lines (never pickles: this process reads hostile bytes, and the server
must not unpickle what it sends back). Answers go over the process's original stdout; stdout itself
is pointed at stderr, so a library that prints cannot corrupt the protocol.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

# Above what the imports took: the interpreter's own growth, small temporaries, modules imported later
# (scikit-learn for the built-in digits).
SLACK_BYTES = 64 << 20


def data_segment_bytes() -> int:
    """This process's VmData: the memory RLIMIT_DATA counts."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmData in /proc/self/status")


def _bytes(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value is not None else None


def _job(payload: dict[str, Any]):
    """The AuditJob the server described (only the fields validation reads; the rest keep their defaults)."""
    from effcap.capacity.graphs.onnx_wire import OnnxLimits
    from effcap.protos.v1 import artifact_pb2, spec_pb2
    from effcap.service.audit_job import AuditJob

    digest = _bytes(payload["model_digest"])
    optional_path = lambda p: Path(p) if p is not None else None  # noqa: E731
    return AuditJob(
        audit="",
        model_path=Path(payload["model_path"]),
        model_digest=artifact_pb2.Digest.FromString(digest) if digest is not None else None,
        dataset=spec_pb2.DatasetRef.FromString(_bytes(payload["dataset"])),
        dataset_path=optional_path(payload["dataset_path"]),
        spec=spec_pb2.AuditSpec.FromString(_bytes(payload["spec"])),
        initial_model_path=optional_path(payload["initial_model_path"]),
        onnx_limits=OnnxLimits(*payload["onnx_limits"]),
    )


def validate(payload: dict[str, Any]) -> dict[str, Any]:
    """What CreateAudit checks: inputs parse and fit each other, and the audit is within the server's limits.

    Answers the training examples the audit will process (for the quota).
    """
    from effcap.capacity.cost import training_examples
    from effcap.capacity.models import build_model, count_parameters
    from effcap.service.limits import AuditLimits, check_audit_size
    from effcap.service.runner import load_inputs

    inputs = load_inputs(_job(payload))
    parameters = count_parameters(build_model(inputs.checkpoint.architecture, device="meta"))
    train_examples = len(inputs.dataset.x_train) if inputs.dataset is not None else 0
    check_audit_size(inputs.spec, train_examples, parameters, AuditLimits(**payload["limits"]))
    # What the principal's daily training quota counts (quotas.py), as check_audit_size counted it.
    return {"ok": True, "training_examples": sum(training_examples(inputs.spec, train_examples).values())}


def estimate(payload: dict[str, Any]) -> dict[str, Any]:
    """EstimateAudit's answer, serialized, from the inputs and the device's calibration."""
    from effcap.capacity.calibration import Calibration
    from effcap.service.audit_estimate import audit_estimate
    from effcap.service.runner import load_inputs

    inputs = load_inputs(_job(payload))
    calibration = Calibration(**payload["calibration"])
    answer = audit_estimate(inputs, calibration, payload["max_training_examples"], payload["audits_ahead"])
    return {"ok": True, "estimate": base64.b64encode(answer.SerializeToString()).decode()}


TASKS = {"validate": validate, "estimate": estimate}


def _field_at_fault(trace: TracebackType | None, payload: dict[str, Any]) -> str:
    """The request field whose loading ran out of memory, from the frames it happened in."""
    while trace is not None:
        frame = trace.tb_frame
        if frame.f_code.co_name == "load_dataset_file":
            return "dataset.artifact"
        if frame.f_code.co_name == "load_checkpoint" and isinstance(frame.f_locals.get("field"), str):
            return frame.f_locals["field"]
        trace = trace.tb_next
    return "dataset.artifact" if payload.get("dataset_path") else "model"


def _is_out_of_memory(error: BaseException) -> bool:
    # torch reports a failed allocation as RuntimeError ("DefaultCPUAllocator: can't allocate memory").
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


def handle(request: dict[str, Any], cap_bytes: int) -> tuple[dict[str, Any], bool]:
    """(the answer, whether this process must exit after sending it)."""
    from effcap.capacity.errors import InputError
    from effcap.service.errors import ApiError
    from effcap.service.inflation import memory_cap_note

    payload = request.get("payload", {})
    try:
        return TASKS[request["task"]](payload), False
    except InputError as error:
        return {
            "error": {
                "code": "INVALID_ARGUMENT",
                "field": error.field,
                "message": error.message,
                "reason": error.reason,
            }
        }, False
    except ApiError as error:
        answer = {"code": error.code.name, "field": error.field, "message": error.message, "reason": error.reason}
        return {"error": {**answer, "metadata": error.metadata}}, False
    except Exception as error:  # noqa: BLE001 - answered, never raised into the server
        if not _is_out_of_memory(error):
            traceback.print_exc()
            return {"error": {"code": "INTERNAL", "message": f"{type(error).__name__}: {str(error)[:500]}"}}, False
        field = _field_at_fault(error.__traceback__, payload)
        message = f"{field}: loading it takes more memory than the cap: {memory_cap_note(cap_bytes)}"
        answer = {
            "code": "RESOURCE_EXHAUSTED",
            "field": field,
            "message": message,
            "reason": "INPUT_TOO_LARGE_IN_MEMORY",
        }
        return {"error": {**answer, "metadata": {"limit_bytes": str(cap_bytes)}}}, True


def main(argv: list[str]) -> int:
    cap_bytes = int(argv[1])
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    import torch

    torch.set_num_threads(1)  # no thread pool to grow after the cap is set; validation computes little
    import effcap.service.audit_estimate  # noqa: F401 - imported before the cap, so the cap counts data only
    import effcap.service.inflation  # noqa: F401 - and the refusal's wording, which must not need memory to import
    import effcap.service.runner  # noqa: F401

    limit = data_segment_bytes() + cap_bytes + SLACK_BYTES
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        protocol.write(json.dumps({"ready": True, "limit_bytes": limit}) + "\n")
        for line in sys.stdin:
            answer, exit_after = handle(json.loads(line), cap_bytes)
            protocol.write(json.dumps({**answer, "exiting": exit_after}) + "\n")
            if exit_after:
                return 0
    except BrokenPipeError:
        pass  # the server is gone (it stopped, or failed to start, while this process imported torch)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
