"""API keys: random bearer tokens of which the store keeps only a SHA-256.

A token is 32 random bytes (256 bits), so a plain SHA-256 is enough to make a stolen database useless
for calling the server: a slow, salted hash (scrypt) protects guessable passwords, and nothing about a
random token is guessable. A fast hash also keeps a lookup per call cheap. The token is shown once,
when the key is created; a lost token is replaced by revoking its key and creating another.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from effcap.service.auth.principal import ANONYMOUS_NAME, Principal
from effcap.service.auth.sqlite_file import connect

TOKEN_PREFIX = "effcap_"
TOKEN_BYTES = 32
# A name is a principal: it shows up in logs and metric labels, so it is short and plain.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    admin INTEGER NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    create_time REAL NOT NULL,
    revoke_time REAL
);
"""


@dataclass(frozen=True)
class ApiKey:
    id: str
    principal: str
    admin: bool
    create_time: float
    revoke_time: float | None

    @property
    def revoked(self) -> bool:
        return self.revoke_time is not None

    def as_principal(self) -> Principal:
        return Principal(self.principal, self.admin)


class InvalidKeyName(ValueError):
    pass


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyRing:
    """The API keys in a data directory's store."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path, SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, name: str, admin: bool = False) -> tuple[ApiKey, str]:
        """A new key for principal `name`, and its token (the only time the token exists in the clear)."""
        if not NAME_PATTERN.fullmatch(name) or name == ANONYMOUS_NAME:
            raise InvalidKeyName(
                f"key name {name!r}: 1-64 letters, digits and . _ @ - (starting with a letter or digit), not {ANONYMOUS_NAME!r}"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        key = ApiKey(uuid.uuid4().hex[:12], name, admin, time.time(), None)
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                (key.id, key.principal, int(admin), token_hash(token), key.create_time),
            )
        return key, token

    def find(self, token: str) -> ApiKey | None:
        """The key a presented token belongs to (revoked or not), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, principal, admin, create_time, revoke_time FROM api_keys WHERE token_sha256 = ?",
                (token_hash(token),),
            ).fetchone()
        return _key(row) if row else None

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, principal, admin, create_time, revoke_time FROM api_keys ORDER BY create_time"
            ).fetchall()
        return [_key(row) for row in rows]

    def revoke(self, id_or_name: str) -> list[ApiKey]:
        """Revoke the key with this id, or every live key of the principal with this name; returns them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, principal, admin, create_time, revoke_time FROM api_keys "
                "WHERE (id = ? OR principal = ?) AND revoke_time IS NULL",
                (id_or_name, id_or_name),
            ).fetchall()
            now = time.time()
            self._db.executemany("UPDATE api_keys SET revoke_time = ? WHERE id = ?", [(now, row[0]) for row in rows])
        return [_key(row) for row in rows]

    def any_issued(self) -> bool:
        """Whether a key was ever created: from then on every call must authenticate, even if all are revoked."""
        with self._lock:
            return self._db.execute("SELECT EXISTS (SELECT 1 FROM api_keys)").fetchone()[0] == 1


def _key(row: tuple) -> ApiKey:
    return ApiKey(id=row[0], principal=row[1], admin=bool(row[2]), create_time=row[3], revoke_time=row[4])
