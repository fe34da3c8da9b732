"""The failure of an executor whose cluster cannot be reached, as the audit's status reports it.

An unreachable Ray cluster is the operator's set-up, not a bug and not the caller's input: the audit fails
UNAVAILABLE (try again once the cluster is up) with a message that names the server option that chose the
cluster and the address tried, where Ray's own text would advise Ray's flags and environment variables.
"""

from __future__ import annotations

RAY_UNREACHABLE = "RAY_UNREACHABLE"


class ExecutorUnavailable(Exception):
    """Raised in the audit's worker; the scheduler turns it into UNAVAILABLE with ErrorInfo `reason` and `metadata`."""

    def __init__(self, reason: str, message: str, metadata: dict[str, str]) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = metadata
