"""One server log line per audit event an operator asks about: created, started, finished.

Without them a server log says nothing about which audits ran, for how long, or how they ended.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("effcap.service.audits")


def log_created(name: str, analyses: list[str], request_id: str) -> None:
    log.info(
        "audit %s created: %s%s",
        name,
        ", ".join(analyses) or "no analyses",
        f" (request_id {request_id})" if request_id else "",
    )


def log_reused(name: str, request_id: str) -> None:
    log.info("audit %s reused from the cache%s", name, f" for request_id {request_id}" if request_id else "")


def log_started(name: str, attempt: int, pid: int | None) -> None:
    log.info("audit %s started: attempt %d, worker pid %s", name, attempt, pid)


def log_finished(name: str, state: str, create_time: float, start_time: float | None, message: str) -> None:
    """State and duration: the run from its start, and the wait in the queue before it."""
    now = time.time()
    ran = (
        f"ran {now - start_time:.1f} s after {start_time - create_time:.1f} s queued" if start_time else "never started"
    )
    detail = f": {message}" if message and message != "succeeded" else ""
    log.info("audit %s finished %s, %s%s", name, state.removeprefix("AUDIT_STATE_"), ran, detail)
