"""Riding out a server restart: retrying calls that found no server, with exponential backoff.

A restart (a deploy, a crash and its supervisor) closes every open call with UNAVAILABLE, while the
audits themselves survive in the server's store. A client following an audit should wait for the
server to come back and carry on where it was, not exit: calls that fail with UNAVAILABLE are retried
after 0.5 s, 1 s, 2 s ... (at most MAX_DELAY_S apart) until `budget_s` pass without an answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from effcap.clients.errors import EffcapError

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 5.0
# How long a client waits for a restarting server before giving up (a busy machine takes ~20 s to start it).
DEFAULT_BUDGET_S = 120.0


class Backoff:
    """Delays between attempts that double up to MAX_DELAY_S, within a budget that a success renews."""

    def __init__(self, budget_s: float = DEFAULT_BUDGET_S, sleep: Callable[[float], None] = time.sleep) -> None:
        self.budget_s = budget_s
        self._sleep = sleep
        self.succeeded()

    def succeeded(self) -> None:
        self._delay = FIRST_DELAY_S
        self._deadline = time.monotonic() + self.budget_s

    def wait_or_raise(self, error: EffcapError) -> None:
        """Sleep before the next attempt, or raise `error` once the budget is spent."""
        if error.code != "UNAVAILABLE" or time.monotonic() + self._delay > self._deadline:
            raise error
        self._sleep(self._delay)
        self._delay = min(2 * self._delay, MAX_DELAY_S)
