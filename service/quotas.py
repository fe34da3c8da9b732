"""Per-principal quotas: bytes stored, audits open (queued or running), and training per rolling day.

Each is checked before the work is accepted: an upload's declared size against the bytes its principal
holds, a new audit against its open audits and against the training examples (counted as admission
counts them, capacity/cost.py) of the audits it created in the last 24 hours. Beyond a quota the call
gets RESOURCE_EXHAUSTED with google.rpc.QuotaFailure naming the quota, the use and the limit.

Calls race (the servicers run on a thread pool), so each check is atomic with what it admits: an audit's
runs inside the store transaction that inserts it (AuditStore.create_audit), and an upload's reserves the
declared bytes until the artifact's row is stored (UploadReservations), since its bytes arrive long after
the check. Two calls racing for a quota's last unit: one is admitted, the other refused.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2

from effcap.protos.v1 import artifact_pb2
from effcap.service.auth.principal import Principal
from effcap.service.errors import ApiError
from effcap.service.store import AuditStore

DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class Quotas:
    """Limits for each principal (None: unlimited); the same for every principal, admins included."""

    stored_bytes: int | None = None
    open_audits: int | None = None
    daily_training_examples: int | None = None

    def check_audit(self, store: AuditStore, principal: Principal, training_examples: int) -> None:
        """Raise QUOTA_EXCEEDED for an audit beyond a quota; call it inside the transaction that inserts it."""
        if self.open_audits is None and self.daily_training_examples is None:
            return
        open_audits, trained = store.usage(principal.name, time.time() - DAY_S)
        if self.open_audits is not None:
            _refuse_beyond(principal, "open_audits", open_audits, 1, self.open_audits, "audits queued or running")
        if self.daily_training_examples is not None:
            what = "training examples in audits created in the last 24 hours"
            _refuse_beyond(
                principal, "daily_training_examples", trained, training_examples, self.daily_training_examples, what
            )


class UploadReservations:
    """Bytes of uploads admitted and not yet stored, per principal, counted by the stored-bytes quota.

    An upload is checked on its declared size before its bytes arrive, and its artifact is recorded only once
    they all have (seconds or minutes later): without counting the uploads under way, every upload racing for
    the quota's last bytes would pass. Kept in memory: an upload does not outlive the server's process.
    """

    def __init__(self, store: AuditStore, quotas: Quotas) -> None:
        self._store = store
        self._limit = quotas.stored_bytes
        self._lock = threading.Lock()
        # principal -> {(sha256, declared bytes): uploads of it under way}
        self._pending: dict[str, Counter[tuple[str, int]]] = {}

    @contextmanager
    def admitted(self, principal: Principal, digest: artifact_pb2.Digest) -> Iterator[None]:
        """Reserve the upload's bytes for its duration (store the artifact within), or raise QUOTA_EXCEEDED."""
        if self._limit is None:
            yield
            return
        key = (digest.sha256, digest.size_bytes)
        with self._lock:
            pending = self._pending.setdefault(principal.name, Counter())
            used = self._store.stored_bytes(principal.name, {sha256: size for sha256, size in pending})
            wanted = 0 if key in pending else digest.size_bytes  # the same bytes uploaded twice at once count once
            try:
                _refuse_beyond(principal, "stored_bytes", used, wanted, self._limit, "bytes of artifacts stored")
            except ApiError:
                if not pending:
                    del self._pending[principal.name]
                raise
            pending[key] += 1
        try:
            yield
        finally:
            with self._lock:
                pending[key] -= 1
                if not pending[key]:
                    del pending[key]
                if not pending:
                    del self._pending[principal.name]


def _refuse_beyond(principal: Principal, quota: str, used: int, wanted: int, limit: int, what: str) -> None:
    if used + wanted <= limit:
        return
    message = (
        f"quota {quota} of {principal.name}: {used:,} {what}, this request adds {wanted:,}; the limit is {limit:,}"
    )
    violation = error_details_pb2.QuotaFailure.Violation(
        subject=f"principal:{principal.name}", description=message, quota_id=quota, quota_value=limit
    )
    raise ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        message,
        metadata={"quota": quota, "used": str(used), "requested": str(wanted), "limit": str(limit)},
        quota_failure=error_details_pb2.QuotaFailure(violations=[violation]),
    )
