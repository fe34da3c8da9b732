"""Retention: what a long-running server deletes by itself, so that its disk does not only ever fill.

- Partial uploads left in artifacts/incoming/ by a crash are removed at start-up (the data-dir lock
  guarantees no other server is writing there, and no upload of this one has begun).
- So are artifact files no record names (a DeleteArtifact cut short between its record and its file) and
  artifacts no principal holds that no unfinished audit reads (DeleteArtifact keeps those while one does).
- A periodic sweep deletes audits that ended more than `reports_s` ago (reports and events with
  them), and artifacts last used more than `artifacts_s` ago. An artifact's last use is the later of
  its upload and the creation of the newest audit that names it; one named by a queued or running
  audit is never removed (checked in the same store transaction that forgets it), and neither is one
  a CreateAudit is validating: that call holds a lease on its digests until its audit is stored.
- Stored trial batches (<data-dir>/batches, the executors' results by digest) written more than `reports_s`
  ago go with the reports: they serve only to resume an unfinished audit without retraining, and an audit
  running longer than that retrains at most the batches it had finished if the server restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from effcap.protos.v1 import audit_pb2
from effcap.service.artifacts import ArtifactStore, request_digests
from effcap.service.store import AuditStore

log = logging.getLogger("effcap.service.retention")
DAY_S = 86_400.0


def remove_partial_uploads(incoming: Path) -> tuple[int, int]:
    """Delete what a crashed server left in `incoming`; (files, bytes) removed."""
    files = size = 0
    for path in incoming.glob("*"):
        if path.is_file():
            size += path.stat().st_size
            path.unlink()
            files += 1
    if files:
        log.info("removed %d partial upload(s) left by an earlier run (%d bytes)", files, size)
    return files, size


def remove_orphaned_artifacts(store: AuditStore, artifacts: ArtifactStore) -> int:
    """At start-up: delete files no artifact row names (a crash between DeleteArtifact's record and its file),
    and artifacts no principal holds any more that no unfinished audit reads (kept by DeleteArtifact for one
    that did). How many files were removed."""
    for sha256 in store.ownerless_artifacts():
        store.delete_artifact_unless_pending(sha256, lambda request, sha256=sha256: sha256 in request_digests(request))
    known = store.artifact_shas()
    orphans = [path for path in artifacts.files() if path.name not in known]
    for path in orphans:
        path.unlink(missing_ok=True)
    if orphans:
        log.info("removed %d artifact file(s) no record names (a deletion interrupted by a crash)", len(orphans))
    return len(orphans)


class ArtifactLeases:
    """Digests a call is about to make an audit of, and whose call it is; the sweep skips them and their owner
    cannot delete them (both decide under the same lock, so no lease starts while they remove)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[tuple[str, str]] = Counter()  # (sha256, principal name)

    @contextmanager
    def hold(self, request: audit_pb2.CreateAuditRequest, principal: str) -> Iterator[None]:
        """Lease the request's digests for `principal` until the block ends (its audit stored, or refused)."""
        leases = [(sha256, principal) for sha256 in request_digests(request)]
        with self._lock:
            self._held.update(leases)
        try:
            yield
        finally:
            with self._lock:
                self._held.subtract(leases)
                self._held += Counter()  # drops the zeros

    @contextmanager
    def holders(self, sha256: str) -> Iterator[frozenset[str]]:
        """The principals whose calls hold `sha256`, with the leases locked meanwhile."""
        with self._lock:
            yield frozenset(principal for digest, principal in self._held if digest == sha256)

    @contextmanager
    def unless_held(self, sha256: str) -> Iterator[bool]:
        """True (with the leases locked) when no call holds `sha256`, so it can be removed."""
        with self.holders(sha256) as principals:
            yield not principals


@dataclass(frozen=True)
class RetentionPolicy:
    # None keeps forever.
    reports_s: float | None = None
    artifacts_s: float | None = None
    sweep_interval_s: float = 3600.0

    @property
    def active(self) -> bool:
        return self.reports_s is not None or self.artifacts_s is not None


class RetentionSweeper:
    def __init__(
        self,
        store: AuditStore,
        artifacts: ArtifactStore,
        leases: ArtifactLeases,
        policy: RetentionPolicy,
        batch_store: Path | None = None,
    ) -> None:
        self._batch_store = batch_store
        self._store = store
        self._artifacts = artifacts
        self._leases = leases
        self._policy = policy
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="effcap-retention", daemon=True)

    def start(self) -> None:
        if self._policy.active:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def sweep(self, now: float | None = None) -> tuple[int, int]:
        """One pass; (audits deleted, artifacts deleted)."""
        now = time.time() if now is None else now
        audits = 0
        if self._policy.reports_s is not None:
            audits = self._store.delete_ended_before(now - self._policy.reports_s)
            self._remove_batches_before(now - self._policy.reports_s)
        removed = 0
        if self._policy.artifacts_s is not None:
            cutoff = now - self._policy.artifacts_s
            for sha256 in self._expired_artifacts(cutoff):
                removed += self._remove_artifact(sha256)
        if audits or removed:
            log.info("retention: deleted %d ended audit(s) and %d unused artifact(s)", audits, removed)
        return audits, removed

    def _remove_batches_before(self, cutoff: float) -> None:
        if self._batch_store is None or not self._batch_store.is_dir():
            return
        removed = 0
        for path in self._batch_store.rglob("*.json"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # another sweep or a rewrite got there first
        if removed:
            log.info("retention: deleted %d stored trial batch(es)", removed)

    def _expired_artifacts(self, cutoff: float) -> list[str]:
        last_use = self._store.artifact_times()
        for _, created, request in self._store.audit_requests():
            for sha256 in request_digests(request) & last_use.keys():
                last_use[sha256] = max(last_use[sha256], created)
        return [sha256 for sha256, used in last_use.items() if used < cutoff]

    def _remove_artifact(self, sha256: str) -> int:
        names_it = lambda request: sha256 in request_digests(request)  # noqa: E731
        with self._artifacts.file_changes, self._leases.unless_held(sha256) as free:
            if not free or not self._store.delete_artifact_unless_pending(sha256, names_it):
                return 0
            self._artifacts.path(sha256).unlink(missing_ok=True)
        return 1

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.sweep()
            except Exception as error:  # noqa: BLE001 - a store error (a full disk) must not end the sweeps
                log.error("retention sweep failed (%s: %s); retrying at the next interval", type(error).__name__, error)
            self._stopping.wait(self._policy.sweep_interval_s)
