"""Who created, cancelled or deleted what, and when: a table in the store that admins query.

(audit_log.py is the server's *log lines* about audits; this is the durable record of principals' actions.)
The server records uploads, audits created, cancelled and deleted, and artifacts deleted; `effcap admin keys`
records the keys it creates and revokes, as the principal data_dir_principal() names (it runs on the data
directory, not as a caller of the server). Admins read it with ListActivity or `effcap admin log`.
"""

from __future__ import annotations

import getpass
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from effcap.service.auth.sqlite_file import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS activity (
    time REAL NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activity_by_time ON activity (time);
"""


DATA_DIR_PREFIX = "data-dir:"


@dataclass(frozen=True)
class Activity:
    time: float
    principal: str
    action: str
    target: str
    # SQLite's rowid: orders entries recorded within the same clock tick, and resumes a page after one.
    id: int = 0


@dataclass(frozen=True)
class ActivityQuery:
    """Which entries a page holds: only `principal`'s when set, at or after `start` and before `end` (seconds)."""

    principal: str | None = None
    start: float | None = None
    end: float | None = None


def data_dir_principal() -> str:
    """Who `effcap admin` acts as on a data directory: the OS user running it. "data-dir:" cannot begin a key's
    name (no ':') nor a certificate's subject (always "X=..."), so it is never mistaken for a caller."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container's arbitrary user)
        user = "unknown"
    return f"{DATA_DIR_PREFIX}{user}"


class ActivityLog:
    def __init__(self, path: Path) -> None:
        self._db = connect(path, SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, principal: str, action: str, target: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO activity VALUES (?, ?, ?, ?)", (time.time(), principal, action, target))

    def page(
        self, size: int, query: ActivityQuery = ActivityQuery(), before: tuple[float, int] | None = None
    ) -> list[Activity]:
        """Up to `size` entries newest first, after (older than) the (time, id) `before` of a previous page."""
        conditions, arguments = [], []
        if before is not None:
            conditions.append("(time, rowid) < (?, ?)")
            arguments.extend(before)
        if query.principal is not None:
            conditions.append("principal = ?")
            arguments.append(query.principal)
        if query.start is not None:
            conditions.append("time >= ?")
            arguments.append(query.start)
        if query.end is not None:
            conditions.append("time < ?")
            arguments.append(query.end)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        columns = "time, principal, action, target, rowid"
        sql = f"SELECT {columns} FROM activity{where} ORDER BY time DESC, rowid DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*arguments, size)).fetchall()
        return [Activity(*row) for row in rows]
