"""effcap from Python: `from effcap.notebook import audit`, then `audit(model, data)` in a notebook or a script.

    from effcap.notebook import audit
    result = audit(model, (x_train, y_train, x_test, y_test), analyses=["weights", "randomization"])
    result                      # in Jupyter: the HTML report
    result.to_dataframe("weights")

`model` is a path (safetensors, ONNX) or a torch.nn.Module; `data` is "builtin:NAME", a path, or arrays. With
`server=None` the audit runs in this process with the server's own runner (as `effcap audit --local`, and
needing `effcap[server]`); with `server="HOST:PORT"` it runs on that server. See docs/notebook.md.
Importing this module loads neither torch nor the server.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from effcap.notebook.result import AuditResult

__all__ = ["AuditResult", "audit"]


def audit(
    model: Any,
    data: Any = None,
    analyses: str | list[str] = "randomization",
    server: str | None = None,
    *,
    seed: int = 0,
    log_to: str | None = None,
    progress: bool = True,
    threads: int | None = None,
    **options: Any,
) -> AuditResult:
    """Audit `model` on `data` and return the report.

    data: "builtin:NAME", a .npz/.safetensors path, (x_train, y_train[, x_test, y_test]) as numpy arrays or
        torch tensors, or a dict of them; None for the data-free `weights` analysis.
    analyses: names as `effcap audit --analyses` takes them (randomization, memorization, rademacher,
        compressibility, memorization_scores, weights), a list or a comma-separated string.
    server: None runs here (`--local`); "HOST:PORT" runs on an effcap server (an API key from $EFFCAP_TOKEN).
    log_to: "mlflow" logs the card's metrics and the report to the active MLflow run (effcap[mlflow]).
    threads: torch threads of a local run (default: the CPUs this process is given).
    options: the CLI's flags with underscores, e.g. conditions=["true", "random"], seeds=3, epochs=50.
    """
    from rich.console import Console

    from effcap.clients.cli import needs_data, spec_from_options
    from effcap.clients.errors import EffcapError
    from effcap.notebook.inputs import dataset_source, model_file

    if log_to not in (None, "mlflow"):
        raise ValueError(f"log_to: {log_to!r} is not supported; use 'mlflow' or None")
    if log_to == "mlflow":
        from effcap.clients.mlflow_tracking import import_mlflow

        import_mlflow()  # fail before the audit, not after it
    spec = spec_from_options(analyses, seed=seed, **options)
    if data is None and needs_data(spec):
        raise EffcapError("data: required by every analysis but weights", "INVALID_ARGUMENT", field="data")
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="effcap-") as scratch:
        work_dir = Path(scratch)
        data_source = dataset_source(data, work_dir) if data is not None else None
        model_path = model_file(model, work_dir, data_source)
        if server is None:
            from effcap.clients.local import run_local

            report = run_local(model_path, data_source, spec, console, show_progress=progress, threads=threads)
        else:
            from effcap.clients.remote import run_remote
            from effcap.clients.sdk import EffcapClient

            report = run_remote(EffcapClient(server), model_path, data_source, spec, console, show_progress=progress)
    if log_to == "mlflow":
        from effcap.clients.mlflow_tracking import log_audit

        log_audit(report)
    return AuditResult(report)
