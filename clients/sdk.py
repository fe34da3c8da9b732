"""The Python client: upload with dedupe, create an audit, follow it, fetch its report; delete uploads; read the
activity log (admins)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import grpc
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import duration_pb2

from effcap.clients.credentials import ClientTls, open_channel
from effcap.clients.errors import UNREACHABLE_HINT, EffcapError
from effcap.clients.reconnect import DEFAULT_BUDGET_S, Backoff
from effcap.protos.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    artifact_pb2,
    artifact_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    report_pb2,
    spec_pb2,
)

CHUNK_BYTES = 1 << 20
MAX_MESSAGE_BYTES = 8 << 20
HASH_BLOCK = 1 << 20


def file_digest(path: Path | str) -> artifact_pb2.Digest:
    """sha256 and size of a file, read in blocks (never whole into memory)."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            hasher.update(block)
            size += len(block)
    return artifact_pb2.Digest(sha256=hasher.hexdigest(), size_bytes=size)


class EffcapClient:
    """A connection to an effcap server. Every failed call raises EffcapError.

    `token` is an API key's token (default: $EFFCAP_TOKEN); `tls` connects over TLS (credentials.py)."""

    def __init__(
        self,
        address: str,
        timeout: float = 60.0,
        reconnect_budget_s: float = DEFAULT_BUDGET_S,
        token: str | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        # How long `wait` keeps reconnecting to a server that went away (a restart) before giving up.
        self.reconnect_budget_s = reconnect_budget_s
        self._channel = open_channel(
            address,
            token=token,
            tls=tls,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 30_000),
                # After a server restart, look for it again within seconds (grpc's default backs off to 120 s).
                ("grpc.initial_reconnect_backoff_ms", 500),
                ("grpc.max_reconnect_backoff_ms", 5_000),
            ],
        )
        self.artifacts = artifact_pb2_grpc.ArtifactServiceStub(self._channel)
        self.audits = audit_pb2_grpc.AuditServiceStub(self._channel)
        self.operations = operations_pb2_grpc.OperationsStub(self._channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> EffcapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            message = f"UNAVAILABLE: no effcap server answered at {self.address} within {timeout:g} s{UNREACHABLE_HINT}"
            raise EffcapError(message, "UNAVAILABLE", unreachable=True) from None

    def upload(self, path: Path | str) -> artifact_pb2.Digest:
        """Upload a file unless the server already holds its digest; returns the digest."""
        digest = file_digest(path)
        missing = self._call(self.artifacts.FindMissingArtifacts, artifact_pb2.FindMissingArtifactsRequest(digests=[digest]))
        if missing.missing:
            self._call(self.artifacts.UploadArtifact, _upload_requests(Path(path), digest), timeout=None)
        return digest

    def delete_artifact(self, digest: artifact_pb2.Digest) -> None:
        """Forget this caller's upload (size_bytes 0: whatever its size). Not the caller's: NOT_FOUND, as for a digest
        nobody uploaded, except for an admin, who can see it and gets PERMISSION_DENIED (ARTIFACT_NOT_OWNED);
        FAILED_PRECONDITION while a queued or running audit of the caller reads it."""
        self._call(self.artifacts.DeleteArtifact, artifact_pb2.DeleteArtifactRequest(digest=digest))

    def activity(
        self,
        principal: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        page_size: int = 0,
    ) -> Iterator[admin_pb2.ActivityEntry]:
        """The activity log newest first, page after page (ListActivity: admins only, PERMISSION_DENIED otherwise);
        only `principal`'s entries, at or after `start` and before `end`, when given."""
        request = admin_pb2.ListActivityRequest(page_size=page_size, principal=principal or "")
        if start is not None:
            request.start_time.FromDatetime(start)
        if end is not None:
            request.end_time.FromDatetime(end)
        while True:
            page = self._call(self.admin.ListActivity, request)
            yield from page.entries
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def create_audit(
        self,
        model: artifact_pb2.Digest,
        dataset: spec_pb2.DatasetRef,
        spec: spec_pb2.AuditSpec,
        request_id: str | None = None,
        skip_cache: bool = False,
        initial_model: artifact_pb2.Digest | None = None,
    ) -> operations_pb2.Operation:
        """Create an audit; an identical earlier audit's finished operation comes back unless skip_cache."""
        request = audit_pb2.CreateAuditRequest(
            request_id=request_id or uuid.uuid4().hex, model=model, dataset=dataset, spec=spec, skip_cache=skip_cache, initial_model=initial_model
        )
        return self._call(self.audits.CreateAudit, request)

    def estimate_audit(self, model: artifact_pb2.Digest, dataset: spec_pb2.DatasetRef, spec: spec_pb2.AuditSpec) -> audit_pb2.AuditEstimate:
        """Trials, SGD steps and the wall time the audit would take on the server's device; nothing runs.

        The server's first estimate on a device measures its calibration (seconds): no short timeout.
        """
        request = audit_pb2.EstimateAuditRequest(model=model, dataset=dataset, spec=spec)
        return self._call(self.audits.EstimateAudit, request, timeout=None)

    def get_audit(self, name: str) -> audit_pb2.Audit:
        return self._call(self.audits.GetAudit, audit_pb2.GetAuditRequest(name=name))

    def get_operation(self, name: str) -> operations_pb2.Operation:
        return self._call(self.operations.GetOperation, operations_pb2.GetOperationRequest(name=name))

    def cancel(self, name: str) -> None:
        self._call(self.operations.CancelOperation, operations_pb2.CancelOperationRequest(name=name))

    def events(self, name: str, after_sequence: int = 0) -> Iterator[audit_pb2.AuditEvent]:
        """The audit's events from `after_sequence` on, until it ends (or the stream breaks)."""
        try:
            yield from self.audits.StreamAuditEvents(audit_pb2.StreamAuditEventsRequest(name=name, after_sequence=after_sequence))
        except grpc.RpcError as error:
            raise EffcapError.from_rpc_error(error) from None

    def wait(
        self, name: str, on_event: Callable[[audit_pb2.AuditEvent], None] | None = None, timeout_per_wait: float = 60.0
    ) -> operations_pb2.Operation:
        """Follow the audit's events (calling `on_event` once per event) until its operation is done.

        A server restart breaks the stream with UNAVAILABLE: the client reconnects with backoff
        (reconnect.py, within `reconnect_budget_s`) and resumes after the last sequence it saw, so no
        event is delivered twice and none is missed."""
        backoff = Backoff(self.reconnect_budget_s)
        last = 0
        while True:
            try:
                for event in self.events(name, last):
                    backoff.succeeded()
                    last = event.sequence
                    if on_event is not None:
                        on_event(event)
                operation = self.get_operation(name)
                backoff.succeeded()
                if operation.done:
                    return operation
                # The stream ended early (e.g. the server stopping): wait for a change, then resume events.
                timeout = duration_pb2.Duration(seconds=int(timeout_per_wait))
                wait = operations_pb2.WaitOperationRequest(name=name, timeout=timeout)
                self._call(self.operations.WaitOperation, wait, timeout=timeout_per_wait + 30)
            except EffcapError as error:
                backoff.wait_or_raise(error)

    @staticmethod
    def report_of(operation: operations_pb2.Operation) -> report_pb2.AuditReport:
        """The report of a finished operation, or EffcapError with the audit's failure."""
        if not operation.done:
            raise EffcapError(f"{operation.name} has not finished", "FAILED_PRECONDITION")
        if operation.HasField("error"):
            raise EffcapError.from_status(operation.error)
        report = report_pb2.AuditReport()
        operation.response.Unpack(report)
        return report

    def _call(self, method: Callable, request: object, timeout: float | None = -1.0) -> object:
        try:
            return method(request, timeout=self.timeout if timeout == -1.0 else timeout)
        except grpc.RpcError as error:
            raise EffcapError.from_rpc_error(error) from None


def _upload_requests(path: Path, digest: artifact_pb2.Digest) -> Iterator[artifact_pb2.UploadArtifactRequest]:
    yield artifact_pb2.UploadArtifactRequest(header=artifact_pb2.UploadHeader(digest=digest))
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield artifact_pb2.UploadArtifactRequest(chunk=chunk)
