"""Who created, cancelled or deleted what, and when: a table in the store that admins query.

(audit_log.py is the server's *log lines* about audits; this is the durable record of principals' actions.)
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Activity:
    time: float
    principal: str
    action: str
    target: str


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

    def recent(self, limit: int = 100, principal: str | None = None) -> list[Activity]:
        """The newest `limit` entries, oldest first; only `principal`'s when given."""
        query = "SELECT time, principal, action, target FROM activity"
        arguments: tuple = ()
        if principal is not None:
            query, arguments = query + " WHERE principal = ?", (principal,)
        with self._lock:
            rows = self._db.execute(f"{query} ORDER BY time DESC LIMIT ?", (*arguments, limit)).fetchall()
        return [Activity(*row) for row in reversed(rows)]
