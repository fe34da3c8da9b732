"""Readable client-side errors from gRPC statuses and their google.rpc details."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

# What a user who has not started a server needs to read when none answers, whatever the command (the CLI adds
# --local where the command has it: audit, check).
UNREACHABLE_HINT = (
    " (is a server running there? start one with `effcap serve`;"
    " a TLS server needs --tls-ca CA.crt or --tls, and one with mutual TLS a client certificate, --tls-cert/--tls-key)"
)


class EffcapError(Exception):
    """A failed call or audit, with the server's reason and the offending field when there is one."""

    def __init__(
        self,
        message: str,
        code: str = "UNKNOWN",
        reason: str = "",
        field: str = "",
        retry_after_s: float | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message)
        # No server answered (no status came back): a command that can run without one says how.
        self.unreachable = unreachable
        self.code = code
        self.reason = reason
        self.field = field
        # From google.rpc.RetryInfo: the server refused for now and says when to try again.
        self.retry_after_s = retry_after_s

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> EffcapError:
        status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
        code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
        message = error.details() if isinstance(error, grpc.Call) else str(error)
        if status is None:  # no status from a server: the connection itself failed
            unreachable = code == "UNAVAILABLE"
            return cls(f"{code}: {message}{UNREACHABLE_HINT if unreachable else ''}", code, unreachable=unreachable)
        return cls.from_status(status, code)

    @classmethod
    def from_status(cls, status: status_pb2.Status, code: str | None = None) -> EffcapError:
        code = code or grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == status.code)).name
        reason, field, retry_after_s = "", "", None
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                if bad.field_violations:
                    field = bad.field_violations[0].field
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after_s = retry.retry_delay.ToTimedelta().total_seconds()
        suffix = f" [{reason}]" if reason else ""
        return cls(f"{code}: {status.message}{suffix}", code, reason, field, retry_after_s)


def server_extras_missing(command: str, error: ImportError) -> EffcapError:
    """The light client (no torch) runs commands that need the library only with the extra named here."""
    message = f"{command} needs the server extras (pip install 'effcap[server]'): {error}"
    return EffcapError(message, "FAILED_PRECONDITION")
