"""API errors (AIP-193): a gRPC status code, a message, and google.rpc details.

Handlers raise ApiError; `handle_errors` turns it (and the library's InputError) into a status
with ErrorInfo and, for bad fields, BadRequest. Anything unexpected becomes INTERNAL with a short
message and a server-side log line: clients never see a stack trace.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from effcap.capacity.errors import InputError
from effcap.service.storage_health import is_storage_full

DOMAIN = "effcap.dev"
# Seconds a client refused for a full disk is told to wait (the server notices free space within one).
STORAGE_RETRY_AFTER_S = 5.0
log = logging.getLogger("effcap.service")

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


class ApiError(Exception):
    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        field: str | None = None,
        metadata: dict[str, str] | None = None,
        retry_after_s: float | None = None,
        quota_failure: error_details_pb2.QuotaFailure | None = None,
    ) -> None:
        super().__init__(message)
        # Set for a principal's quota: which quota, its use and its limit (google.rpc.QuotaFailure).
        self.quota_failure = quota_failure
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field
        self.metadata = metadata or {}
        # Set for transient refusals: sent as google.rpc.RetryInfo.
        self.retry_after_s = retry_after_s

    def to_status(self) -> status_pb2.Status:
        details = [error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)]
        if self.field is not None:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.message)]
                )
            )
        if self.retry_after_s is not None:
            delay = duration_pb2.Duration()
            delay.FromTimedelta(timedelta(seconds=self.retry_after_s))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        if self.quota_failure is not None:
            details.append(self.quota_failure)
        packed = []
        for detail in details:
            holder = any_pb2.Any()
            holder.Pack(detail)
            packed.append(holder)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)


def invalid_argument(field: str, message: str, reason: str = "INVALID_ARGUMENT") -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, reason, f"{field}: {message}", field=field)


def not_found(what: str, name: str, reason: str = "NOT_FOUND", field: str | None = None) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, reason, f"{what} {name} not found", field=field)


def from_input_error(error: InputError) -> ApiError:
    return invalid_argument(error.field, error.message, error.reason)


def storage_full() -> ApiError:
    """A write refused for lack of space: the client may retry later; nothing was stored."""
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "STORAGE_FULL",
        "the server's storage is full; nothing was stored. Retry once space has been freed",
        retry_after_s=STORAGE_RETRY_AFTER_S,
    )


def internal_status(message: str) -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message)


def handle_errors(method: HandlerT) -> HandlerT:
    """Decorate a servicer method (unary or streaming) so every failure is a clean gRPC status."""

    def abort(context: grpc.ServicerContext, error: Exception) -> None:
        if isinstance(error, InputError):
            error = from_input_error(error)
        elif is_storage_full(error):
            log.error("%s: storage full (%s)", method.__name__, error)
            error = storage_full()
        if not isinstance(error, ApiError):
            log.exception("unexpected error in %s", method.__name__)
            error = ApiError(grpc.StatusCode.INTERNAL, "INTERNAL", "internal error; see the server log")
        context.abort_with_status(rpc_status.to_status(error.to_status()))

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def streaming(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                yield from method(self, request, context)
            except Exception as error:  # noqa: BLE001 - converted, never leaked
                abort(context, error)

        return streaming  # type: ignore[return-value]

    @functools.wraps(method)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as error:  # noqa: BLE001 - converted, never leaked
            abort(context, error)

    return unary  # type: ignore[return-value]
