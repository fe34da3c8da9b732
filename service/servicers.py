"""gRPC servicers: thin handlers that validate requests and delegate to the stores and scheduler.

Every lookup is made as the caller (auth/principal.py): what another principal owns is NOT_FOUND, with
the same message as what does not exist, so that no answer reveals it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from contextlib import AbstractContextManager
from functools import partial
from importlib import metadata

import grpc
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import empty_pb2

from effcap.capacity.json_values import load_json
from effcap.protos.v1 import artifact_pb2, artifact_pb2_grpc, audit_pb2, audit_pb2_grpc
from effcap.service.artifacts import SHA256_PATTERN, ArtifactStore, check_digest, request_inputs
from effcap.service.audit_job import AuditJob
from effcap.service.audit_log import log_created, log_reused
from effcap.service.auth.activity import ActivityLog
from effcap.service.auth.principal import Principal, principal_of
from effcap.service.errors import ApiError, handle_errors, invalid_argument, not_found
from effcap.service.estimator import AuditEstimator
from effcap.service.header_validation import check_job_headers
from effcap.service.inflation import InflationPool
from effcap.service.limits import AuditLimits, LongCallSlots, cancel_when_idle
from effcap.service.quotas import Quotas, UploadReservations
from effcap.service.retention import ArtifactLeases
from effcap.service.scheduler import Scheduler
from effcap.service.store import AuditRecord, AuditStore, State

EFFCAP_VERSION = metadata.version("effcap")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DEFAULT_WAIT_S = 60.0
MAX_WAIT_S = 600.0
# Names and request ids are echoed in error messages, which travel in 16 KiB of status metadata.
MAX_NAME_LENGTH = 128
MAX_REQUEST_ID_LENGTH = 128
STREAM_POLL_S = 1.0
# ListOperations responses stop short of this (the default message limit is 8 MiB).
LIST_RESPONSE_BYTES = 4 << 20


class ArtifactServicer(artifact_pb2_grpc.ArtifactServiceServicer):
    def __init__(
        self,
        artifacts: ArtifactStore,
        long_calls: LongCallSlots,
        upload_idle_s: float,
        activity: ActivityLog,
        store: AuditStore,
        quotas: Quotas,
        leases: ArtifactLeases,
    ) -> None:
        # The same leases CreateAudit holds: a deletion leaves the file to an audit being created from it.
        self._leases = leases
        self._store = store
        self._reservations = UploadReservations(store, quotas)
        self._artifacts = artifacts
        self._activity = activity
        self._long_calls = long_calls
        self._upload_idle_s = upload_idle_s

    @handle_errors
    def FindMissingArtifacts(self, request, context):  # noqa: N802 - gRPC method name
        for i, digest in enumerate(request.digests):
            check_digest(digest, f"digests[{i}]", self._artifacts.max_bytes)
        principal = principal_of(context)
        missing = [d for d in request.digests if self._artifacts.get(d, principal) is None]
        return artifact_pb2.FindMissingArtifactsResponse(missing=missing)

    @handle_errors
    def UploadArtifact(self, request_iterator, context):  # noqa: N802
        with self._long_calls.held("UploadArtifact"):
            requests = cancel_when_idle(request_iterator, context, self._upload_idle_s)
            principal = principal_of(context)
            try:
                artifact, added = self._artifacts.receive(requests, principal, partial(self._admit_upload, principal))
            finally:
                requests.close()  # stops the idle watchdog now, whether or not receive read to the end
            if added:
                self._activity.record(principal.name, "upload", f"sha256:{artifact.digest.sha256}")
            return artifact

    def _admit_upload(self, principal: Principal, digest: artifact_pb2.Digest) -> AbstractContextManager[None]:
        return self._reservations.admitted(principal, digest)

    @handle_errors
    def GetArtifact(self, request, context):  # noqa: N802
        artifact, _ = self._artifacts.require(request.digest, "digest", principal_of(context))
        return artifact

    @handle_errors
    def DeleteArtifact(self, request, context):  # noqa: N802
        """Owner-only, admins included (decisions.md): an upload is its uploader's record of bytes others may share."""
        principal = principal_of(context)
        digest = request.digest
        check_deletable_digest(digest)
        row = self._store.get_artifact(digest.sha256, None)
        size_matches = row is not None and digest.size_bytes in (0, row[0])
        deletion = self._artifacts.forget(digest.sha256, principal, self._leases.holders) if size_matches else None
        if deletion is None or not deletion.held:
            if size_matches and principal.admin:  # an admin may know it exists: say why instead
                raise ApiError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "ARTIFACT_NOT_OWNED",
                    f"{_artifact_label(digest)} was not uploaded by {principal.name}: an artifact is deleted by the "
                    "principals that uploaded it (admins included); unused ones expire with --retain-artifacts",
                    field="digest",
                )
            raise not_found("artifact", _artifact_label(digest), "ARTIFACT_NOT_FOUND", field="digest")
        if deletion.in_create:
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "ARTIFACT_IN_USE",
                f"{_artifact_label(digest)} is read by an audit of yours being created; delete it once CreateAudit "
                "has answered (and the audit has ended)",
                field="digest",
            )
        if deletion.in_use_by is not None:
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "ARTIFACT_IN_USE",
                f"{_artifact_label(digest)} is read by {deletion.in_use_by}, which has not ended; cancel it or wait",
                field="digest",
                metadata={"audit": deletion.in_use_by},
            )
        self._activity.record(principal.name, "delete", f"sha256:{digest.sha256}")
        return empty_pb2.Empty()


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(
        self,
        store: AuditStore,
        artifacts: ArtifactStore,
        scheduler: Scheduler,
        long_calls: LongCallSlots,
        limits: AuditLimits,
        estimator: AuditEstimator,
        activity: ActivityLog,
        quotas: Quotas,
        inflation: InflationPool,
        leases: ArtifactLeases | None = None,
    ) -> None:
        self._quotas = quotas
        self._activity = activity
        self._store = store
        self._artifacts = artifacts
        self._scheduler = scheduler
        self._long_calls = long_calls
        self._limits = limits
        self._estimator = estimator
        self._inflation = inflation
        # Held from the inputs' validation until the audit is stored, so retention never removes them in between.
        self._leases = leases or ArtifactLeases()

    @handle_errors
    def CreateAudit(self, request, context):  # noqa: N802
        if len(request.request_id) > MAX_REQUEST_ID_LENGTH:
            raise invalid_argument("request_id", f"is {len(request.request_id)} characters; at most {MAX_REQUEST_ID_LENGTH} (a UUID is 36)", "INVALID_REQUEST_ID")
        if not request.request_id.isprintable():  # the store qualifies request_ids with a newline (store.request_key)
            raise invalid_argument("request_id", "must not contain control characters", "INVALID_REQUEST_ID")
        principal = principal_of(context)
        request_hash = _request_hash(request)
        existing = self._existing_by_request_id(request, request_hash, principal)
        if existing is not None:
            return operation_for(existing)
        if not request.skip_cache:
            cached = self._store.find_succeeded(request_hash, principal.name)
            if cached is not None:  # identical inputs, spec and version: the same report, at once
                if request.request_id:  # kept, so that a retry (even with skip_cache) gets this audit again
                    cached = self._store.record_request_id(request.request_id, cached.id, principal.name)
                log_reused(cached.name, request.request_id)
                return operation_for(cached)
        with self._leases.hold(request, principal.name):  # from before the look-up: its owner cannot delete them
            job = self._checked_job(request, principal)
            training = self._inflation.validate(job, self._limits)  # the inputs loaded in a capped process
            admit = partial(self._quotas.check_audit, self._store, principal, training)  # atomic with the insert
            inputs = request_inputs(request)  # checked again in the insert's transaction
            record, created = self._store.create_audit(
                request, request_hash, principal.name, training, admit, inputs, principal.admin
            )
        if not created and record.request_hash != request_hash:
            raise _request_id_reused(request.request_id)
        if created:
            analyses = [f.name for f, _ in request.spec.ListFields() if f.message_type and f.name != "architecture"]
            log_created(record.name, analyses, request.request_id)
            self._activity.record(principal.name, "create", record.name)
        self._scheduler.notify()
        return operation_for(record)

    @handle_errors
    def EstimateAudit(self, request, context):  # noqa: N802
        create = audit_pb2.CreateAuditRequest(model=request.model, dataset=request.dataset, spec=request.spec)
        job = self._checked_job(create, principal_of(context))
        calibration = self._estimator.calibration()
        return self._inflation.estimate(job, calibration, self._limits.max_training_examples, self._store.unfinished_count())

    @handle_errors
    def GetAudit(self, request, context):  # noqa: N802
        return find_audit(self._store, request.name, principal_of(context)).to_proto()

    @handle_errors
    def ListAudits(self, request, context):  # noqa: N802
        records, token = list_page(self._store, request.page_size, request.page_token, principal_of(context))
        return audit_pb2.ListAuditsResponse(audits=[r.to_proto(with_report=False) for r in records], next_page_token=token)

    @handle_errors
    def StreamAuditEvents(self, request, context):  # noqa: N802
        record = find_audit(self._store, request.name, principal_of(context))
        sequence = request.after_sequence
        queue_position = 0
        with self._long_calls.held("StreamAuditEvents"):
            while context.is_active():
                events = self._store.events_after(record.id, sequence)
                for event in events:
                    sequence = event.sequence
                    yield event
                if events:
                    continue
                record = self._store.get(record.id)
                if record is None or (record.done and sequence >= record.last_sequence):
                    return
                if record.state == State.AUDIT_STATE_QUEUED:
                    position = self._store.queue_position(record.id)
                    if position != queue_position:
                        queue_position = position
                        yield queue_event(record, sequence, position)
                self._store.wait_for_change(STREAM_POLL_S)

    def _existing_by_request_id(
        self, request: audit_pb2.CreateAuditRequest, request_hash: str, principal: Principal
    ) -> AuditRecord | None:
        """AIP-155: a retried request returns the audit it created; a different one may not reuse the id.

        request_ids are per principal: another's use of the same id is neither returned nor refused."""
        if not request.request_id:
            return None
        record = self._store.find_by_request_id(request.request_id, principal.name)
        if record is not None and record.request_hash != request_hash:
            raise _request_id_reused(request.request_id)
        return record

    def _checked_job(self, request: audit_pb2.CreateAuditRequest, principal: Principal) -> AuditJob:
        """The request's job once its inputs' headers pass (InputError -> INVALID_ARGUMENT naming the field)."""
        job = self._job_for_validation(request, principal)
        check_job_headers(job, self._inflation.cap_bytes)
        return job

    def _job_for_validation(self, request: audit_pb2.CreateAuditRequest, principal: Principal) -> AuditJob:
        if not request.HasField("model"):
            what = "the digest of an uploaded safetensors checkpoint or ONNX model"
            raise invalid_argument("model", f"is required: {what}", "FIELD_REQUIRED")
        require = self._artifacts.require
        _, model_path = require(request.model, "model", principal)
        source = request.dataset.WhichOneof("source")  # none: load_inputs refuses it unless the spec needs no data
        dataset_path = require(request.dataset.artifact, "dataset.artifact", principal)[1] if source == "artifact" else None
        initial_path = require(request.initial_model, "initial_model", principal)[1] if request.HasField("initial_model") else None
        return AuditJob(
            audit="",
            model_path=model_path,
            model_digest=request.model,
            dataset=request.dataset,
            dataset_path=dataset_path,
            spec=request.spec,
            initial_model_path=initial_path,
            onnx_limits=self._artifacts.onnx_limits,
        )


class OperationsServicer(operations_pb2_grpc.OperationsServicer):
    """google.longrunning.Operations over audits: the operation of an audit shares its name."""

    def __init__(self, store: AuditStore, scheduler: Scheduler, long_calls: LongCallSlots, activity: ActivityLog) -> None:
        self._activity = activity
        self._store = store
        self._scheduler = scheduler
        self._long_calls = long_calls

    @handle_errors
    def GetOperation(self, request, context):  # noqa: N802
        return operation_for(find_audit(self._store, request.name, principal_of(context)))

    @handle_errors
    def ListOperations(self, request, context):  # noqa: N802
        if request.filter:
            raise invalid_argument("filter", "filters are not supported; leave it empty", "UNSUPPORTED_FILTER")
        records, token = list_page(self._store, request.page_size, request.page_token, principal_of(context))
        operations, token = operations_within(records, token, LIST_RESPONSE_BYTES)
        return operations_pb2.ListOperationsResponse(operations=operations, next_page_token=token)

    @handle_errors
    def CancelOperation(self, request, context):  # noqa: N802
        principal = principal_of(context)
        record = find_audit(self._store, request.name, principal)
        if not self._scheduler.cancel(record.id):
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, "AUDIT_ALREADY_ENDED", f"{record.name} has already ended", field="name")
        self._activity.record(principal.name, "cancel", record.name)
        return empty_pb2.Empty()

    @handle_errors
    def DeleteOperation(self, request, context):  # noqa: N802
        principal = principal_of(context)
        record = find_audit(self._store, request.name, principal)
        if record.owner != principal.name:  # only an admin sees another's audit; deleting stays the owner's (decision 175)
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                "AUDIT_NOT_OWNED",
                f"{record.name} belongs to {record.owner}: an audit is deleted by its owner (admins included); admins may "
                "cancel it, and --retain-reports expires finished ones",
                field="name",
            )
        if not record.done:
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, "AUDIT_NOT_ENDED", f"{record.name} is still running; cancel it first", field="name")
        self._store.delete(record.id)
        self._activity.record(principal.name, "delete", record.name)
        return empty_pb2.Empty()

    @handle_errors
    def WaitOperation(self, request, context):  # noqa: N802
        timeout = DEFAULT_WAIT_S
        if request.HasField("timeout"):
            timeout = request.timeout.seconds + request.timeout.nanos / 1e9  # ToTimedelta overflows past 10^9 days
            if not 0 <= timeout <= MAX_WAIT_S:
                raise invalid_argument("timeout", f"must be between 0 and {MAX_WAIT_S:g} seconds", "INVALID_TIMEOUT")
        deadline = time.monotonic() + timeout
        principal = principal_of(context)
        record = find_audit(self._store, request.name, principal)
        if record.done or timeout == 0:
            return operation_for(record)  # nothing to wait for: no slot taken
        with self._long_calls.held("WaitOperation"):
            while not record.done and context.is_active():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._store.wait_for_change(min(remaining, STREAM_POLL_S))
                record = find_audit(self._store, request.name, principal)
        return operation_for(record)


def queue_event(record: AuditRecord, sequence: int, position: int) -> audit_pb2.AuditEvent:
    """A queued audit's place in line, sent on its event stream whenever it changes.

    Not stored: it repeats the last stored event's sequence, so a client resuming after it misses nothing.
    """
    progress = audit_pb2.AuditProgress(
        audit=record.name, state=State.AUDIT_STATE_QUEUED, stage=f"queued: position {position}", queue_position=position
    )
    progress.update_time.GetCurrentTime()
    return audit_pb2.AuditEvent(sequence=sequence, progress=progress)


def find_audit(store: AuditStore, name: str, principal: Principal) -> AuditRecord:
    """The named audit if `principal` may see it; NOT_FOUND alike whether it is missing or someone else's."""
    prefix = "audits/"
    if len(name) > MAX_NAME_LENGTH:
        raise invalid_argument("name", f"is {len(name)} characters; audit names are at most {MAX_NAME_LENGTH}", "INVALID_NAME")
    if not name.startswith(prefix) or len(name) == len(prefix):
        raise invalid_argument("name", f"must look like audits/{{id}}, got {name!r}", "INVALID_NAME")
    record = store.get(name[len(prefix) :])
    if record is None or not principal.sees(record.owner):
        raise not_found("audit", name, "AUDIT_NOT_FOUND", field="name")
    return record


def check_deletable_digest(digest: artifact_pb2.Digest) -> None:
    """A DeleteArtifact digest: sha256 as everywhere, size_bytes 0 (any) or a size an artifact could have."""
    if not SHA256_PATTERN.fullmatch(digest.sha256):
        raise invalid_argument("digest.sha256", "must be 64 lowercase hexadecimal characters", "INVALID_DIGEST")
    if digest.size_bytes < 0:
        raise invalid_argument("digest.size_bytes", "must be 0 (any size) or the artifact's size", "INVALID_DIGEST")


def _artifact_label(digest: artifact_pb2.Digest) -> str:
    size = f" ({digest.size_bytes} bytes)" if digest.size_bytes else ""
    return f"sha256:{digest.sha256}{size}"


def operation_for(record: AuditRecord) -> operations_pb2.Operation:
    operation = operations_pb2.Operation(name=record.name, done=record.done)
    operation.metadata.Pack(record.to_proto(with_report=False).progress)
    if record.state == State.AUDIT_STATE_SUCCEEDED and record.report is not None:
        operation.response.Pack(record.report)
    elif record.done and record.error is not None:
        operation.error.CopyFrom(record.error)
    return operation


def operations_within(records: list[AuditRecord], token: str, budget_bytes: int) -> tuple[list[operations_pb2.Operation], str]:
    """The page's operations (each carries its whole report) up to `budget_bytes`, always at least
    one; a page cut short ends with a token to the rest."""
    operations: list[operations_pb2.Operation] = []
    size = 0
    for index, record in enumerate(records):
        operation = operation_for(record)
        size += operation.ByteSize()
        if operations and size > budget_bytes:
            return operations, _token_after(records[index - 1])
        operations.append(operation)
    return operations, token


def list_page(store: AuditStore, page_size: int, page_token: str, principal: Principal) -> tuple[list[AuditRecord], str]:
    if page_size < 0:
        raise invalid_argument("page_size", "must not be negative", "INVALID_PAGE_SIZE")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = None
    if page_token:
        refused = invalid_argument("page_token", "is not a token this server issued", "INVALID_PAGE_TOKEN")
        try:
            created, audit_id = load_json(base64.urlsafe_b64decode(page_token.encode()), "page_token")
            # Exactly the types _token_after writes: float("1.5") or float(True) would accept tokens never issued.
            if type(created) not in (int, float) or type(audit_id) is not str:
                raise refused
            after = (float(created), audit_id)
        except (ValueError, TypeError, OverflowError):  # InputError is a ValueError; huge ints overflow float()
            raise refused from None
        if not math.isfinite(after[0]) or len(after[1]) > MAX_NAME_LENGTH:
            raise refused
    # One record past the page says whether another page exists, so a full last page carries no token.
    records = store.list(size + 1, after, principal.owner_filter)
    return records[:size], _token_after(records[size - 1]) if len(records) > size else ""


def _token_after(record: AuditRecord) -> str:
    return base64.urlsafe_b64encode(json.dumps([record.create_time, record.id]).encode()).decode()


def _request_hash(request: audit_pb2.CreateAuditRequest) -> str:
    """Identity of what an audit computes: model and data digests, spec, and effcap's version."""
    body = audit_pb2.CreateAuditRequest()
    body.CopyFrom(request)
    body.request_id = ""
    body.skip_cache = False
    return hashlib.sha256(EFFCAP_VERSION.encode() + b"\0" + body.SerializeToString(deterministic=True)).hexdigest()


def _request_id_reused(request_id: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
        f"request_id {request_id!r} was already used for a different request",
        field="request_id",
    )
