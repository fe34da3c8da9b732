"""A second connection to the store's SQLite file, for the tables the auth modules own.

The CLI (`effcap admin ...`) writes keys while a server runs, so these tables are reached through their
own connection: WAL mode lets it read beside the server, and the busy timeout waits out its writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

STORE_FILE = "effcap.sqlite3"
BUSY_TIMEOUT_S = 10.0


def connect(path: Path, schema: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db
