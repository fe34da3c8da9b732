"""The audit store: audits, their events and artifact metadata in one SQLite file (WAL mode).

The server process is the only writer (workers report through pipes), so one connection behind a
lock suffices. Writers notify a condition variable that event streams and WaitOperation sleep on.
Everything an audit needs to resume after a restart (its request, state, attempts) is stored here.
Every audit and artifact has an owner (auth/principal.py): an audit's in its row, an artifact's in
artifact_owners, since the bytes are stored once but each principal that uploaded them owns them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import status_pb2

from effcap.protos.v1 import audit_pb2, report_pb2
from effcap.service.audit_log import log_finished
from effcap.service.auth.principal import ANONYMOUS_NAME
from effcap.service.errors import ApiError, not_found

SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    sha256 TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    format INTEGER NOT NULL,
    create_time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audits (
    id TEXT PRIMARY KEY,
    request_id TEXT UNIQUE,
    request_hash TEXT NOT NULL,
    request BLOB NOT NULL,
    state INTEGER NOT NULL,
    create_time REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_sequence INTEGER NOT NULL DEFAULT 0,
    progress BLOB,
    error BLOB,
    report BLOB,
    owner TEXT NOT NULL DEFAULT 'anonymous',
    -- Training examples the audit was admitted for (capacity/cost.py): what the daily quota counts.
    training_examples INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS audits_by_state ON audits (state, create_time);
CREATE INDEX IF NOT EXISTS audits_by_request_hash ON audits (request_hash, state);
-- request_ids answered with another audit (a cached report): AIP-155 needs them kept as well.
CREATE TABLE IF NOT EXISTS request_aliases (
    request_id TEXT PRIMARY KEY,
    audit_id TEXT NOT NULL REFERENCES audits (id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS events (
    audit_id TEXT NOT NULL REFERENCES audits (id) ON DELETE CASCADE,
    sequence INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (audit_id, sequence)
);
-- Who may see an artifact: each principal that uploaded its bytes (they are stored once).
CREATE TABLE IF NOT EXISTS artifact_owners (
    sha256 TEXT NOT NULL REFERENCES artifacts (sha256) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    PRIMARY KEY (sha256, owner)
);
"""
# Columns that data dirs from older versions lack, and what adds each. Without owners, audits and
# artifacts become the anonymous principal's; audits from before quotas count no training.
MIGRATIONS = {
    "owner": """
ALTER TABLE audits ADD COLUMN owner TEXT NOT NULL DEFAULT 'anonymous';
INSERT OR IGNORE INTO artifact_owners (sha256, owner) SELECT sha256, 'anonymous' FROM artifacts;
""",
    "training_examples": "ALTER TABLE audits ADD COLUMN training_examples INTEGER NOT NULL DEFAULT 0;",
}

State = audit_pb2.AuditState
TERMINAL_STATES = frozenset({State.AUDIT_STATE_SUCCEEDED, State.AUDIT_STATE_FAILED, State.AUDIT_STATE_CANCELLED})


def audit_name(audit_id: str) -> str:
    return f"audits/{audit_id}"


def request_key(owner: str, request_id: str) -> str:
    """request_ids are the caller's own (AIP-155): stored qualified by the owner, so that two principals
    may pick the same one. The anonymous principal's are stored as given (as before owners existed)."""
    return request_id if owner == ANONYMOUS_NAME else f"{owner}\n{request_id}"


def timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


@dataclass(frozen=True)
class AuditRecord:
    id: str
    request_id: str | None
    request_hash: str
    request: audit_pb2.CreateAuditRequest
    state: int
    create_time: float
    start_time: float | None
    end_time: float | None
    attempts: int
    last_sequence: int
    progress: audit_pb2.AuditProgress
    error: status_pb2.Status | None
    report: report_pb2.AuditReport | None
    owner: str = ANONYMOUS_NAME

    @property
    def name(self) -> str:
        return audit_name(self.id)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_proto(self, with_report: bool = True) -> audit_pb2.Audit:
        audit = audit_pb2.Audit(
            name=self.name,
            state=self.state,
            request_id=self.request.request_id,
            model=self.request.model,
            dataset=self.request.dataset,
            spec=self.request.spec,
            progress=self.progress,
        )
        audit.progress.state = self.state
        for field, seconds in (("create_time", self.create_time), ("start_time", self.start_time), ("end_time", self.end_time)):
            if seconds is not None:
                getattr(audit, field).CopyFrom(timestamp(seconds))
        if self.error is not None:
            audit.error.CopyFrom(self.error)
        if with_report and self.report is not None:
            audit.report.CopyFrom(self.report)
        return audit


@dataclass(frozen=True)
class ArtifactDeletion:
    """What AuditStore.delete_artifact_owner did: nothing unless `held` and no `in_use_by`."""

    held: bool
    # The first queued or running audit of the owner that reads the artifact: its record was kept.
    in_use_by: str | None = None
    # A CreateAudit of the owner holds a lease on the artifact (it is validating it): its record was kept.
    in_create: bool = False
    # The artifact's row is gone: its bytes are no one's and may leave the disk.
    bytes_unreferenced: bool = False


class AuditStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(audits)")}
        self._db.executescript(SCHEMA)
        for column, migration in MIGRATIONS.items():
            if columns and column not in columns:
                self._db.executescript(f"BEGIN; {migration} COMMIT;")
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # After SQLITE_FULL or an I/O error SQLite may or may not have rolled back by itself (its
                # docs ask for an explicit ROLLBACK): one left open would make every later BEGIN fail.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self.changed.notify_all()

    # ---- artifacts -------------------------------------------------------------------------

    def put_artifact(self, sha256: str, size_bytes: int, fmt: int, owner: str = ANONYMOUS_NAME) -> tuple[float, bool]:
        """Record the artifact as `owner`'s: (its create_time, whether `owner` did not hold it before)."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO artifacts VALUES (?, ?, ?, ?)", (sha256, size_bytes, fmt, time.time()))
            added = db.execute("INSERT OR IGNORE INTO artifact_owners VALUES (?, ?)", (sha256, owner)).rowcount == 1
            row = db.execute("SELECT create_time FROM artifacts WHERE sha256 = ?", (sha256,)).fetchone()
        return row[0], added

    def get_artifact(self, sha256: str, owner: str | None) -> tuple[int, int, float] | None:
        """(size_bytes, format, create_time) of a committed artifact `owner` holds (None: whoever holds it)."""
        query = "SELECT size_bytes, format, create_time FROM artifacts WHERE sha256 = ?"
        if owner is None:
            arguments: tuple = (sha256,)
        else:
            query += " AND EXISTS (SELECT 1 FROM artifact_owners o WHERE o.sha256 = artifacts.sha256 AND o.owner = ?)"
            arguments = (sha256, owner)
        with self._lock:
            return self._db.execute(query, arguments).fetchone()

    def stored_bytes_by_owner(self) -> dict[str, int]:
        """Artifact bytes per owning principal (shared bytes count for each owner)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.owner, SUM(a.size_bytes) FROM artifact_owners o JOIN artifacts a USING (sha256) GROUP BY o.owner"
            ).fetchall()
        return dict(rows)

    def artifact_times(self) -> dict[str, float]:
        """Every committed artifact's sha256 and upload time (for retention.py)."""
        with self._lock:
            return dict(self._db.execute("SELECT sha256, create_time FROM artifacts").fetchall())

    def delete_artifact_unless_pending(self, sha256: str, pending: Callable[[audit_pb2.CreateAuditRequest], bool]) -> bool:
        """Forget an artifact unless a queued or running audit's request is `pending` on it; whether it was forgotten."""
        with self._transaction() as db:
            states = (State.AUDIT_STATE_QUEUED, State.AUDIT_STATE_RUNNING)
            for (request,) in db.execute("SELECT request FROM audits WHERE state IN (?, ?)", states):
                if pending(audit_pb2.CreateAuditRequest.FromString(request)):
                    return False
            db.execute("DELETE FROM artifact_owners WHERE sha256 = ?", (sha256,))  # no principal holds it any more
            return db.execute("DELETE FROM artifacts WHERE sha256 = ?", (sha256,)).rowcount > 0

    def delete_artifact_owner(
        self,
        sha256: str,
        owner: str,
        reads: Callable[[audit_pb2.CreateAuditRequest], bool],
        drop_unheld: bool,
        owner_creating: bool = False,
    ) -> ArtifactDeletion:
        """Forget that `owner` holds an artifact, in one transaction, unless an unfinished audit of `owner` reads it
        or `owner_creating` (a CreateAudit of `owner` is validating it: its audit is about to read it).

        When no principal holds it any more, no unfinished audit (of anyone: an admin's may read it) reads it and
        `drop_unheld`, the artifact's row goes too and the caller removes the bytes (bytes_unreferenced)."""
        with self._transaction() as db:
            holder = "SELECT 1 FROM artifact_owners WHERE sha256 = ? AND owner = ?"
            if db.execute(holder, (sha256, owner)).fetchone() is None:
                return ArtifactDeletion(held=False)
            if owner_creating:
                return ArtifactDeletion(held=True, in_create=True)
            states = (State.AUDIT_STATE_QUEUED, State.AUDIT_STATE_RUNNING)
            query = "SELECT id, owner, request FROM audits WHERE state IN (?, ?) ORDER BY create_time, id"
            rows = db.execute(query, states).fetchall()
            readers = [(i, o) for i, o, request in rows if reads(audit_pb2.CreateAuditRequest.FromString(request))]
            own = [audit_id for audit_id, reader in readers if reader == owner]
            if own:
                return ArtifactDeletion(held=True, in_use_by=audit_name(own[0]))
            db.execute("DELETE FROM artifact_owners WHERE sha256 = ? AND owner = ?", (sha256, owner))
            others = db.execute("SELECT 1 FROM artifact_owners WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone()
            unreferenced = drop_unheld and others is None and not readers
            if unreferenced:
                db.execute("DELETE FROM artifacts WHERE sha256 = ?", (sha256,))
        return ArtifactDeletion(held=True, bytes_unreferenced=unreferenced)

    def artifact_shas(self) -> set[str]:
        """The sha256 of every artifact row (for the start-up sweep of files no row names)."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT sha256 FROM artifacts")}

    def ownerless_artifacts(self) -> list[str]:
        """Artifacts no principal holds: kept by DeleteArtifact while an unfinished audit read them."""
        with self._lock:
            held = "SELECT 1 FROM artifact_owners o WHERE o.sha256 = a.sha256"
            return [row[0] for row in self._db.execute(f"SELECT sha256 FROM artifacts a WHERE NOT EXISTS ({held})")]

    # ---- audits ------------------------------------------------------------------------------

    def audit_requests(self) -> list[tuple[int, float, audit_pb2.CreateAuditRequest]]:
        """(state, create_time, request) of every audit (for retention.py)."""
        with self._lock:
            rows = self._db.execute("SELECT state, create_time, request FROM audits").fetchall()
        return [(state, created, audit_pb2.CreateAuditRequest.FromString(request)) for state, created, request in rows]

    def delete_ended_before(self, cutoff: float) -> int:
        """Delete audits (reports and events with them) that ended before `cutoff`; how many."""
        with self._transaction() as db:
            terminal = tuple(TERMINAL_STATES)
            marks = ", ".join("?" * len(terminal))
            query = f"DELETE FROM audits WHERE end_time < ? AND state IN ({marks})"
            return db.execute(query, (cutoff, *terminal)).rowcount

    def create_audit(
        self,
        request: audit_pb2.CreateAuditRequest,
        request_hash: str,
        owner: str = ANONYMOUS_NAME,
        training_examples: int = 0,
        admit: Callable[[], None] = lambda: None,
        inputs: Mapping[str, str] | None = None,
        admin: bool = False,
    ) -> tuple[AuditRecord, bool]:
        """Insert a QUEUED audit, or return `owner`'s existing one with the same request_id (created=False).

        `inputs` (request field -> sha256) are checked again in the insert's transaction: each artifact must still
        be stored and, unless `admin` (who may audit anyone's uploads), held by `owner`; NOT_FOUND naming the
        field otherwise, so no audit is ever queued on an upload its owner deleted while it was validated.
        `admit` runs in the insert's transaction, before it (quotas): what it reads from this store cannot change
        before the insert, so two creates racing for a quota's last unit cannot both pass; raising refuses."""
        key = request_key(owner, request.request_id) if request.request_id else None
        with self._transaction() as db:
            if key is not None:
                row = db.execute("SELECT id FROM audits WHERE request_id = ?", (key,)).fetchone()
                if row is not None:
                    return self._get_locked(row[0]), False
            self._check_inputs_locked(inputs or {}, None if admin else owner)
            admit()
            audit_id = uuid.uuid4().hex
            progress = audit_pb2.AuditProgress(audit=audit_name(audit_id), state=State.AUDIT_STATE_QUEUED, stage="queued")
            db.execute(
                "INSERT INTO audits (id, request_id, request_hash, request, state, create_time, progress, owner, training_examples) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (audit_id, key, request_hash, request.SerializeToString(), State.AUDIT_STATE_QUEUED, time.time(), progress.SerializeToString(), owner, training_examples),
            )
            return self._get_locked(audit_id), True

    def _check_inputs_locked(self, inputs: Mapping[str, str], owner: str | None) -> None:
        """NOT_FOUND naming the first field whose artifact is gone (for `owner`; None: for everyone)."""
        for field, sha256 in inputs.items():
            query = "SELECT 1 FROM artifacts a WHERE a.sha256 = ?"
            arguments: tuple = (sha256,)
            if owner is not None:
                query += " AND EXISTS (SELECT 1 FROM artifact_owners o WHERE o.sha256 = a.sha256 AND o.owner = ?)"
                arguments = (sha256, owner)
            if self._db.execute(query, arguments).fetchone() is None:
                message = "was deleted while the audit was being created"
                raise not_found("artifact", f"sha256:{sha256} ({message})", "ARTIFACT_NOT_FOUND", field=field)

    def get(self, audit_id: str) -> AuditRecord | None:
        with self._lock:
            return self._get_locked(audit_id)

    def find_by_request_id(self, request_id: str, owner: str = ANONYMOUS_NAME) -> AuditRecord | None:
        """The audit `owner`'s request_id created, or the one it was answered with from the cache."""
        key = request_key(owner, request_id)
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM audits WHERE request_id = ? "
                "UNION ALL SELECT audit_id FROM request_aliases WHERE request_id = ?",
                (key, key),
            ).fetchone()
            return self._get_locked(row[0]) if row else None

    def record_request_id(self, request_id: str, audit_id: str, owner: str = ANONYMOUS_NAME) -> AuditRecord:
        """Remember that `request_id` was answered with `audit_id`; the audit it already names if it has one."""
        with self._transaction() as db:
            insert = "INSERT OR IGNORE INTO request_aliases (request_id, audit_id) VALUES (?, ?)"
            db.execute(insert, (request_key(owner, request_id), audit_id))
        record = self.find_by_request_id(request_id, owner)
        assert record is not None
        return record

    def find_succeeded(self, request_hash: str, owner: str = ANONYMOUS_NAME) -> AuditRecord | None:
        """`owner`'s newest succeeded audit of an identical request (see servicers._request_hash).

        Another principal's report is never reused: answering with it would reveal that it exists."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM audits WHERE request_hash = ? AND state = ? AND owner = ? ORDER BY create_time DESC LIMIT 1",
                (request_hash, State.AUDIT_STATE_SUCCEEDED, owner),
            ).fetchone()
            return self._get_locked(row[0]) if row else None

    def list(self, page_size: int, after: tuple[float, str] | None, owner: str | None = None) -> list[AuditRecord]:
        """Audits oldest first, after the (create_time, id) of the previous page's last one; only `owner`'s if given."""
        conditions, arguments = [], []
        if after is not None:
            conditions.append("(create_time, id) > (?, ?)")
            arguments.extend(after)
        if owner is not None:
            conditions.append("owner = ?")
            arguments.append(owner)
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        with self._lock:
            rows = self._db.execute(f"SELECT id FROM audits {where}ORDER BY create_time, id LIMIT ?", (*arguments, page_size)).fetchall()
            return [self._get_locked(r[0]) for r in rows]

    def queue_position(self, audit_id: str) -> int:
        """1 + the QUEUED audits that run before this one (claim_next_queued's order); 0 if it is not queued."""
        with self._lock:
            row = self._db.execute("SELECT state, create_time FROM audits WHERE id = ?", (audit_id,)).fetchone()
            if row is None or row[0] != State.AUDIT_STATE_QUEUED:
                return 0
            ahead = self._db.execute(
                "SELECT COUNT(*) FROM audits WHERE state = ? AND (create_time, id) < (?, ?)", (State.AUDIT_STATE_QUEUED, row[1], audit_id)
            ).fetchone()[0]
            return ahead + 1

    def unfinished_count(self) -> int:
        """Audits queued or running: those a new audit would wait behind."""
        with self._lock:
            states = (State.AUDIT_STATE_QUEUED, State.AUDIT_STATE_RUNNING)
            return self._db.execute("SELECT COUNT(*) FROM audits WHERE state IN (?, ?)", states).fetchone()[0]

    def usage(self, owner: str, since: float) -> tuple[int, int]:
        """What the audit quotas count for `owner`: (audits queued or running, training examples of audits created
        since `since`). Stored bytes are `stored_bytes`'."""
        states = (State.AUDIT_STATE_QUEUED, State.AUDIT_STATE_RUNNING)
        with self._lock:
            open_audits = self._db.execute("SELECT COUNT(*) FROM audits WHERE owner = ? AND state IN (?, ?)", (owner, *states)).fetchone()[0]
            trained = self._db.execute(
                "SELECT COALESCE(SUM(training_examples), 0) FROM audits WHERE owner = ? AND create_time >= ?", (owner, since)
            ).fetchone()[0]
        return open_audits, trained

    def stored_bytes(self, owner: str, pending: Mapping[str, int]) -> int:
        """Artifact bytes `owner` holds, plus the sizes of `pending` uploads (sha256 -> bytes) of artifacts it
        does not hold yet (one that was stored meanwhile is counted once)."""
        with self._lock:
            held = self._db.execute(
                "SELECT COALESCE(SUM(a.size_bytes), 0) FROM artifact_owners o JOIN artifacts a USING (sha256) "
                "WHERE o.owner = ?",
                (owner,),
            ).fetchone()[0]
            marks = ", ".join("?" * len(pending))
            stored = {
                row[0]
                for row in self._db.execute(
                    f"SELECT sha256 FROM artifact_owners WHERE owner = ? AND sha256 IN ({marks})", (owner, *pending)
                )
            }
        return held + sum(size for sha256, size in pending.items() if sha256 not in stored)

    def count_by_state(self) -> dict[int, int]:
        """How many audits are in each state (for metrics)."""
        with self._lock:
            return dict(self._db.execute("SELECT state, COUNT(*) FROM audits GROUP BY state").fetchall())

    def claim_next_queued(self) -> AuditRecord | None:
        """Move the oldest QUEUED audit to RUNNING and count the attempt."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM audits WHERE state = ? ORDER BY create_time, id LIMIT 1", (State.AUDIT_STATE_QUEUED,)).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE audits SET state = ?, attempts = attempts + 1, start_time = COALESCE(start_time, ?) WHERE id = ?",
                (State.AUDIT_STATE_RUNNING, time.time(), row[0]),
            )
            return self._get_locked(row[0])

    def append_event(
        self,
        audit_id: str,
        progress: audit_pb2.AuditProgress | None,
        trial: report_pb2.TrialResult | None = None,
        message: str | None = None,
    ) -> audit_pb2.AuditEvent | None:
        """Record an event with the audit's progress after it (None: unchanged); None if the audit has ended."""
        with self._transaction() as db:
            row = db.execute("SELECT state, last_sequence, attempts, progress FROM audits WHERE id = ?", (audit_id,)).fetchone()
            if row is None or row[0] in TERMINAL_STATES:
                return None
            if progress is None:
                progress = audit_pb2.AuditProgress.FromString(row[3]) if row[3] else audit_pb2.AuditProgress()
            return self._insert_event(db, audit_id, row[1] + 1, progress, row[0], row[2], trial, message)

    def finish(
        self,
        audit_id: str,
        state: int,
        report: report_pb2.AuditReport | None = None,
        error: status_pb2.Status | None = None,
        message: str = "",
    ) -> bool:
        """End an audit (once: a finished audit is never overwritten). Returns whether it changed."""
        with self._transaction() as db:
            columns = "state, last_sequence, attempts, progress, create_time, start_time"
            row = db.execute(f"SELECT {columns} FROM audits WHERE id = ?", (audit_id,)).fetchone()
            if row is None or row[0] in TERMINAL_STATES:
                return False
            progress = audit_pb2.AuditProgress.FromString(row[3])
            progress.stage = message or {State.AUDIT_STATE_SUCCEEDED: "succeeded"}.get(state, "ended")
            if state == State.AUDIT_STATE_SUCCEEDED:
                progress.fraction, progress.trials_done = 1.0, progress.trials_total
            db.execute(
                "UPDATE audits SET state = ?, end_time = ?, report = ?, error = ? WHERE id = ?",
                (state, time.time(), report.SerializeToString() if report else None, error.SerializeToString() if error else None, audit_id),
            )
            self._insert_event(db, audit_id, row[1] + 1, progress, state, row[2], None, message or None)
        log_finished(audit_name(audit_id), State.Name(state), row[4], row[5], message)
        return True

    def requeue_interrupted(self, max_attempts: int) -> tuple[list[str], list[str]]:
        """After a restart: RUNNING audits go back to the queue, or fail once out of attempts."""
        requeued, failed = [], []
        with self._transaction() as db:
            rows = db.execute("SELECT id, attempts FROM audits WHERE state = ?", (State.AUDIT_STATE_RUNNING,)).fetchall()
            for audit_id, attempts in rows:
                if attempts < max_attempts:
                    db.execute("UPDATE audits SET state = ? WHERE id = ?", (State.AUDIT_STATE_QUEUED, audit_id))
                    requeued.append(audit_id)
                else:
                    failed.append(audit_id)
        for audit_id in failed:
            error = ApiError(grpc.StatusCode.UNAVAILABLE, "OUT_OF_ATTEMPTS", f"the server stopped during each of {max_attempts} attempts").to_status()
            self.finish(audit_id, State.AUDIT_STATE_FAILED, error=error, message="failed: interrupted too often")
        for audit_id in requeued:
            record = self.get(audit_id)
            progress = audit_pb2.AuditProgress(audit=record.name, state=State.AUDIT_STATE_QUEUED, stage="queued again after a server restart")
            self.append_event(audit_id, progress, message="the server restarted; the audit resumes from the start with the same seed")
        return requeued, failed

    def delete(self, audit_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM audits WHERE id = ?", (audit_id,))

    def events_after(self, audit_id: str, sequence: int) -> list[audit_pb2.AuditEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event FROM events WHERE audit_id = ? AND sequence > ? ORDER BY sequence", (audit_id, sequence)
            ).fetchall()
        return [audit_pb2.AuditEvent.FromString(r[0]) for r in rows]

    def wait_for_change(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)

    # ---- internals -----------------------------------------------------------------------------

    def _insert_event(
        self,
        db: sqlite3.Connection,
        audit_id: str,
        sequence: int,
        progress: audit_pb2.AuditProgress,
        state: int,
        attempts: int,
        trial: report_pb2.TrialResult | None,
        message: str | None,
    ) -> audit_pb2.AuditEvent:
        snapshot = audit_pb2.AuditProgress()
        snapshot.CopyFrom(progress)
        snapshot.audit, snapshot.state, snapshot.attempt = audit_name(audit_id), state, attempts
        now = time.time()
        snapshot.update_time.CopyFrom(timestamp(now))
        event = audit_pb2.AuditEvent(sequence=sequence, progress=snapshot)
        event.time.CopyFrom(snapshot.update_time)
        if trial is not None:
            event.trial_finished.CopyFrom(trial)
        elif message is not None:
            event.message = message
        db.execute("INSERT INTO events VALUES (?, ?, ?)", (audit_id, sequence, event.SerializeToString()))
        db.execute("UPDATE audits SET last_sequence = ?, progress = ? WHERE id = ?", (sequence, snapshot.SerializeToString(), audit_id))
        return event

    def _get_locked(self, audit_id: str) -> AuditRecord | None:
        row = self._db.execute(
            "SELECT id, request_id, request_hash, request, state, create_time, start_time, end_time, attempts, last_sequence, progress, error, report, owner "
            "FROM audits WHERE id = ?",
            (audit_id,),
        ).fetchone()
        if row is None:
            return None
        return AuditRecord(
            id=row[0],
            request_id=row[1],
            request_hash=row[2],
            request=audit_pb2.CreateAuditRequest.FromString(row[3]),
            state=row[4],
            create_time=row[5],
            start_time=row[6],
            end_time=row[7],
            attempts=row[8],
            last_sequence=row[9],
            progress=audit_pb2.AuditProgress.FromString(row[10]) if row[10] else audit_pb2.AuditProgress(),
            error=status_pb2.Status.FromString(row[11]) if row[11] else None,
            report=report_pb2.AuditReport.FromString(row[12]) if row[12] else None,
            owner=row[13],
        )
