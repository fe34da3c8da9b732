"""`effcap audit` against a server: upload (deduplicated), create the audit, follow it, fetch the report."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from effcap.clients.progress_view import ProgressView
from effcap.clients.sdk import EffcapClient
from effcap.clients.spec_args import dataset_ref
from effcap.protos.v1 import audit_pb2, report_pb2, spec_pb2


def run_remote(
    connection: EffcapClient,
    model: Path,
    data: str | None,
    spec: spec_pb2.AuditSpec,
    console: Console,
    request_id: str | None = None,
    show_progress: bool = True,
    skip_cache: bool = False,
    initial_model: Path | None = None,
) -> report_pb2.AuditReport:
    """`connection` is a client not yet used: it is closed at the end."""
    with connection as client:
        address = client.address
        client.wait_ready(timeout=10)
        model_digest = client.upload(model)
        data_file = data is not None and not data.startswith("builtin:")  # None: a data-free audit (weights)
        data_digest = client.upload(Path(data)) if data_file else None
        initial_digest = client.upload(initial_model) if initial_model is not None else None
        operation = client.create_audit(model_digest, dataset_ref(data, data_digest), spec, request_id, skip_cache=skip_cache, initial_model=initial_digest)
        if operation.done:
            console.print(f"audit {operation.name} on {address}: the report of an identical audit, reused", highlight=False)
            return client.report_of(operation)
        console.print(f"audit {operation.name} created on {address}", highlight=False)
        with ProgressView(console, enabled=show_progress) as view:
            operation = client.wait(operation.name, on_event=view.on_event)
        return client.report_of(operation)


def estimate_remote(connection: EffcapClient, model: Path, data: str | None, spec: spec_pb2.AuditSpec) -> audit_pb2.AuditEstimate:
    """The server's estimate of the audit (`--dry-run`): the inputs are uploaded, nothing is queued."""
    with connection as client:
        client.wait_ready(timeout=10)
        model_digest = client.upload(model)
        data_file = data is not None and not data.startswith("builtin:")  # None: a data-free audit (weights)
        data_digest = client.upload(Path(data)) if data_file else None
        return client.estimate_audit(model_digest, dataset_ref(data, data_digest), spec)
