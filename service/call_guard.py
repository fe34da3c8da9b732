"""Every call the server answers passes here: requests decoded by us, long streams capped, each call observed.

grpc decodes a request before the handler runs, and bytes that do not parse become INTERNAL
"Exception deserializing request!" with six ERROR lines of traceback. So the interceptor re-registers
every handler to take raw bytes and decodes them itself: bytes that do not parse get INVALID_ARGUMENT
naming `request`, and one log line. Streams that the libraries own (server reflection, Health.Watch)
hold an RPC thread for as long as the client keeps them open, so they share the long-call slots
with uploads and event streams (limits.LongCallSlots): the threads beyond those stay free for health
and short calls. While the data directory cannot take writes (storage_health.py), calls that store
something are refused with RESOURCE_EXHAUSTED before they start: SQLite can go on committing into
space it already holds, so waiting for a write to fail would let some creates in and not others.
Before anything else, each call is authenticated (auth/authenticator.py): the principal rides on the
context the handlers get. Finally each call's principal, method, status and latency go to the metrics
and the access log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import grpc
from grpc_status import rpc_status

from effcap.service.auth.principal import ANONYMOUS, Principal
from effcap.service.errors import ApiError, storage_full
from effcap.service.limits import LongCallSlots
from effcap.service.observability import CallObserver

log = logging.getLogger("effcap.service")

# Streams registered by grpc's own libraries: capped here, since their handlers are not ours.
LIBRARY_STREAMS = frozenset(
    {
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.health.v1.Health/Watch",
    }
)

# Calls that write to the data directory: refused at once while it is full.
STORING_METHODS = frozenset({"/effcap.v1.ArtifactService/UploadArtifact", "/effcap.v1.AuditService/CreateAudit"})


class UndecodableRequest(ApiError):
    def __init__(self, method: str, size: int, error: Exception) -> None:
        super().__init__(
            grpc.StatusCode.INVALID_ARGUMENT,
            "UNDECODABLE_REQUEST",
            f"request: {size} bytes that are not a valid request message for {method}",
            field="request",
        )
        log.warning("%s: undecodable request of %d bytes (%s: %s)", method, size, type(error).__name__, error)


class RecordingContext:
    """The servicer context, noting the status code the handler ends the call with, and carrying the caller."""

    def __init__(self, context: grpc.ServicerContext) -> None:
        self._context = context
        self.code = grpc.StatusCode.OK
        self.principal: Principal = ANONYMOUS

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self._context.abort(code, details)

    def abort_with_status(self, status: grpc.Status) -> None:
        self.code = status.code
        self._context.abort_with_status(status)

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code
        self._context.set_code(code)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class CallGuard(grpc.ServerInterceptor):
    def __init__(
        self,
        long_calls: LongCallSlots,
        observer: CallObserver,
        storage_writable: Callable[[], bool],
        authenticate: Callable[[str, grpc.ServicerContext], Principal],
    ) -> None:
        self._long_calls = long_calls
        self._authenticate = authenticate
        self._observer = observer
        self._storage_writable = storage_writable

    def intercept_service(
        self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None  # grpc answers UNIMPLEMENTED; unknown method names are not counted (unbounded labels)
        method = handler_call_details.method
        decode = _decoder(method, handler.request_deserializer)
        if method in STORING_METHODS:
            decode = self._refused_while_full(decode)
        slot = (lambda: self._long_calls.held(method)) if method in LIBRARY_STREAMS else nullcontext
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, handler.stream_stream, lambda requests: map(decode, requests), slot),
                response_serializer=handler.response_serializer,
            )
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary, lambda requests: map(decode, requests)),
                response_serializer=handler.response_serializer,
            )
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream, decode, slot),
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            self._unary(method, handler.unary_unary, decode), response_serializer=handler.response_serializer
        )

    def _refused_while_full(self, decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def checked(request: Any) -> Any:
            if not self._storage_writable():
                raise storage_full()
            return decode(request)

        return checked

    def _unary(self, method: str, behaviour: Callable, decode: Callable) -> Callable:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            recording, start = RecordingContext(context), time.monotonic()
            try:
                recording.principal = self._authenticate(method, context)
                return behaviour(decode(request), recording)
            except ApiError as error:  # an undecodable request, before or inside the handler
                recording.abort_with_status(rpc_status.to_status(error.to_status()))
            except Exception:
                recording.code = recording.code if recording.code != grpc.StatusCode.OK else grpc.StatusCode.UNKNOWN
                raise
            finally:
                self._observer.finished(method, _final_code(recording), time.monotonic() - start, recording)

        return call

    def _streaming(
        self, method: str, behaviour: Callable, decode: Callable, slot: Callable[[], AbstractContextManager]
    ) -> Callable:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            recording, start = RecordingContext(context), time.monotonic()
            try:
                recording.principal = self._authenticate(method, context)
                with slot():
                    yield from behaviour(decode(request), recording)
            except ApiError as error:
                recording.abort_with_status(rpc_status.to_status(error.to_status()))
            except Exception:
                recording.code = recording.code if recording.code != grpc.StatusCode.OK else grpc.StatusCode.UNKNOWN
                raise
            finally:
                self._observer.finished(method, _final_code(recording), time.monotonic() - start, recording)

        return call


def _decoder(method: str, deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    if deserializer is None:
        return lambda raw: raw

    def decode(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception as error:  # noqa: BLE001 - any parse failure is the client's bytes
            raise UndecodableRequest(method, len(raw), error) from None

    return decode


def _final_code(recording: RecordingContext) -> grpc.StatusCode:
    if recording.code == grpc.StatusCode.OK and not recording.is_active():
        return grpc.StatusCode.CANCELLED  # the client went away before the answer
    return recording.code
