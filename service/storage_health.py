"""Surviving a full disk: recognising it, refusing writes politely, and noticing when space returns.

A write that fails for lack of space is not a bug: uploads and creates get RESOURCE_EXHAUSTED with
a retry hint, health says NOT_SERVING, and threads the service needs wait and retry rather than die.
A probe writes and syncs a small file in the data directory every second: it fails while the disk is
full (SQLite alone can succeed, reusing pages it already holds) and succeeds again within a second
of space returning, when health goes back to SERVING without anyone restarting anything.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("effcap.service")

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
PROBE_BYTES = 64 * 1024
PROBE_INTERVAL_S = 1.0


def is_storage_full(error: BaseException) -> bool:
    """A write refused for lack of space: ENOSPC/EDQUOT/EFBIG from the OS, or SQLITE_FULL."""
    if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
        return True
    return (
        isinstance(error, sqlite3.OperationalError) and getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    )


def retry_until_stored(write: Callable[[], object], stopping: threading.Event, what: str) -> None:
    """Run a store write, retrying every second while storage fails (a full disk, an I/O error) until
    it succeeds or the server stops: a worker's report must not be lost to a full disk, and the thread
    doing the write must not die of it. Any other error is a bug: logged, and the write dropped."""
    failures = 0
    while True:
        try:
            write()
            return
        except (OSError, sqlite3.Error) as error:
            failures += 1
            if failures == 1:
                log.error(
                    "cannot store %s (%s: %s); retrying every %g s", what, type(error).__name__, error, PROBE_INTERVAL_S
                )
            if stopping.wait(PROBE_INTERVAL_S):
                return
        except Exception:  # noqa: BLE001 - the thread that called lives on
            log.exception("cannot store %s", what)
            return


class StorageProbe:
    """Whether the data directory can take a write, checked every `interval_s` on a daemon thread."""

    def __init__(self, data_dir: Path, on_change: Callable[[bool], None], interval_s: float = PROBE_INTERVAL_S) -> None:
        self._path = data_dir / ".write-probe"
        self._on_change = on_change
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self.writable = True
        self._thread = threading.Thread(target=self._run, name="effcap-storage-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def check(self) -> bool:
        try:
            with self._path.open("wb") as handle:
                handle.write(b"\0" * PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
            return True
        except OSError:
            return False
        finally:
            self._path.unlink(missing_ok=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            writable = self.check()
            if writable != self.writable:
                self.writable = writable
                if writable:
                    log.warning("storage writable again: serving")
                else:
                    log.error("storage cannot take writes (disk full?): health NOT_SERVING until it can")
                self._on_change(writable)
            self._stopping.wait(max(0.0, self._interval_s - (time.monotonic() - started)))
