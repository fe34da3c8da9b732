"""Per-principal quotas: bytes stored, audits open (queued or running), and training per rolling day.

Each is checked before the work is accepted: an upload's declared size against the bytes its principal
holds, a new audit against its open audits and against the training examples (counted as admission
counts them, capacity/cost.py) of the audits it created in the last 24 hours. Beyond a quota the call
gets RESOURCE_EXHAUSTED with google.rpc.QuotaFailure naming the quota, the use and the limit. Two calls
racing past a quota's last unit may both be admitted: a quota bounds use to within one call's worth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2

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

    def check_upload(self, store: AuditStore, principal: Principal, size_bytes: int) -> None:
        if self.stored_bytes is None:
            return
        stored, _, _ = store.usage(principal.name, time.time() - DAY_S)
        _refuse_beyond(principal, "stored_bytes", stored, size_bytes, self.stored_bytes, "bytes of artifacts stored")

    def check_audit(self, store: AuditStore, principal: Principal, training_examples: int) -> None:
        if self.open_audits is None and self.daily_training_examples is None:
            return
        _, open_audits, trained = store.usage(principal.name, time.time() - DAY_S)
        if self.open_audits is not None:
            _refuse_beyond(principal, "open_audits", open_audits, 1, self.open_audits, "audits queued or running")
        if self.daily_training_examples is not None:
            what = "training examples in audits created in the last 24 hours"
            _refuse_beyond(
                principal, "daily_training_examples", trained, training_examples, self.daily_training_examples, what
            )


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
