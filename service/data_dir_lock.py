"""One server per data directory: an exclusive lock held for the server's life.

Two servers on one directory both re-queue and run the same audits (each takes the other's RUNNING
audits for interrupted ones), and the loser's orphaned worker holds a slot. flock(2) is released by
the kernel when the process dies, however it dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "server.lock"


class DataDirInUse(Exception):
    """Another live process holds the directory's lock; the message names its pid."""


class DataDirLock:
    """Hold with `acquire`; `release` (or the process's exit) lets the next server in."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(f"{self.path.parent} is in use by another effcap server (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
