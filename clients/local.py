"""`effcap audit --local`: the server's own audit runner, in this process, without a server.

It calls the same `run_audit` the server's workers call, so a local run gives the same numbers as a
server run of the same inputs and seed. Needs the server extras (torch).
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from effcap.clients.errors import EffcapError, server_extras_missing
from effcap.clients.progress_view import ProgressView
from effcap.clients.sdk import file_digest
from effcap.clients.spec_args import dataset_ref
from effcap.protos.v1 import audit_pb2, report_pb2, spec_pb2

# Where `--local --dry-run` keeps this machine's calibration (a server keeps it in its data dir).
CALIBRATION_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "effcap"


def run_local(
    model: Path,
    data: str | None,
    spec: spec_pb2.AuditSpec,
    console: Console,
    show_progress: bool = True,
    initial_model: Path | None = None,
    threads: int | None = None,
) -> report_pb2.AuditReport:
    """Run the audit in this process with the thread plan a server's only worker would get (or `threads`)."""
    from effcap.service.executors.threads import apply_thread_plan, plan_threads

    thread_plan = plan_threads(concurrent_audits=1, requested=threads)
    try:
        thread_plan = apply_thread_plan(thread_plan)  # before the runner imports torch: OpenMP reads its settings once
        from effcap.capacity.errors import InputError
        from effcap.service.runner import run_audit
    except ImportError as error:
        raise server_extras_missing("--local", error) from None
    job = _job(model, data, spec, initial_model)
    with ProgressView(console, enabled=show_progress) as view:
        try:
            return run_audit(job, view, thread_plan)
        except InputError as error:
            raise EffcapError(f"INVALID_ARGUMENT: {error}", "INVALID_ARGUMENT", error.reason, error.field) from None
        except Exception as error:  # noqa: BLE001 - reported as a server reports a worker's failure
            message = f"INTERNAL: the analysis failed: {type(error).__name__}: {str(error)[:1000]}"
            raise EffcapError(message, "INTERNAL", "ANALYSIS_FAILED") from None


def estimate_local(model: Path, data: str | None, spec: spec_pb2.AuditSpec, threads: int | None = None) -> audit_pb2.AuditEstimate:
    """`--local --dry-run`: the estimate a server would give, on this process's device and thread plan."""
    from effcap.service.executors.threads import apply_thread_plan, plan_threads

    apply_thread_plan(plan_threads(concurrent_audits=1, requested=threads))
    from effcap.capacity.calibration import cached_calibration
    from effcap.capacity.engine.device import pick_device
    from effcap.capacity.errors import InputError
    from effcap.service.audit_estimate import audit_estimate
    from effcap.service.limits import AuditLimits
    from effcap.service.runner import load_inputs

    job = _job(model, data, spec, None)
    try:
        inputs = load_inputs(job)
    except InputError as error:
        raise EffcapError(f"INVALID_ARGUMENT: {error}", "INVALID_ARGUMENT", error.reason, error.field) from None
    calibration = cached_calibration(CALIBRATION_DIR, pick_device("auto"))
    return audit_estimate(inputs, calibration, AuditLimits().max_training_examples, 0)


def _job(model: Path, data: str | None, spec: spec_pb2.AuditSpec, initial_model: Path | None):
    """The AuditJob a server would build for these inputs (imports the runner: call after the thread plan)."""
    from effcap.service.runner import AuditJob

    data_file = data is not None and not data.startswith("builtin:")  # None: a data-free audit (weights)
    return AuditJob(
        audit="",
        model_path=model,
        model_digest=file_digest(model),
        dataset=dataset_ref(data, file_digest(data) if data_file else None),
        dataset_path=Path(data) if data_file else None,
        spec=spec,
        initial_model_path=initial_model,
    )
