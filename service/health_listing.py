"""grpc's health servicer, answering Health.List as well.

The health proto the server advertises (through reflection) includes List, which grpc's own servicer
does not implement: a client that asked got an error instead of the statuses Check already knows.
"""

from __future__ import annotations

import threading

import grpc
from grpc_health.v1 import health, health_pb2


class ListingHealthServicer(health.HealthServicer):
    """Keeps a copy of each service's status as it is set, and lists them."""

    def __init__(self) -> None:
        super().__init__()
        self._listed: dict[str, int] = {}
        self._listed_lock = threading.Lock()
        self._shutting_down = False  # from then on statuses stay NOT_SERVING, as in the library's copy

    def set(self, service: str, status: int) -> None:
        super().set(service, status)  # the library's enter_graceful_shutdown comes here too, before it freezes
        with self._listed_lock:
            if not self._shutting_down:
                self._listed[service] = status

    def enter_graceful_shutdown(self) -> None:
        super().enter_graceful_shutdown()
        with self._listed_lock:
            self._shutting_down = True

    def List(
        self, request: health_pb2.HealthListRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthListResponse:  # noqa: N802
        with self._listed_lock:
            statuses = {
                service: health_pb2.HealthCheckResponse(status=status) for service, status in self._listed.items()
            }
        return health_pb2.HealthListResponse(statuses=statuses)
