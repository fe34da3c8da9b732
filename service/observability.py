"""What an operator watches: Prometheus metrics and one structured access-log line per call.

Metrics live in a registry of the server's own (several servers in one process, as in tests, would
collide in the default one). Audit counts by state and the queue depth are read from the store when
scraped, so they can never drift from what the store holds. The access log is one JSON object per
line, so that log tools can filter by principal, method or status without parsing prose. Calls are
counted by principal too: principals are API keys and certificate subjects an operator issued, so
the label stays bounded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from effcap.protos.v1 import audit_pb2

if TYPE_CHECKING:
    from effcap.service.call_guard import RecordingContext

access_log = logging.getLogger("effcap.access")
# Seconds: short calls answer in milliseconds, streams and waits last up to minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600)


class CallObserver:
    """Counts and times every call by method and status, and logs it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "effcap_rpc_requests",
            "RPCs answered, by method, status code and principal",
            ["method", "code", "principal"],
            registry=registry,
        )
        self.latency = Histogram(
            "effcap_rpc_latency_seconds",
            "RPC latency, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def finished(self, method: str, code: grpc.StatusCode, seconds: float, context: RecordingContext) -> None:
        """`context` is call_guard's, which carries the authenticated principal."""
        principal = context.principal.name
        self.calls.labels(method=method, code=code.name, principal=principal).inc()
        self.latency.labels(method=method).observe(seconds)
        line = {
            "principal": principal,
            "method": method,
            "code": code.name,
            "latency_ms": round(seconds * 1000, 3),
            "peer": context.peer(),
        }
        access_log.info(json.dumps(line))


class WorkerExits:
    """Worker processes that ended, by cause (succeeded, invalid_input, analysis_error, executor_unavailable, crashed,
    cancelled)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counter = Counter(
            "effcap_worker_exits", "Audit worker processes that ended, by cause", ["cause"], registry=registry
        )

    def __call__(self, cause: str) -> None:
        self._counter.labels(cause=cause).inc()


class AuditStateCollector(Collector):
    """Audits by state and the queue's depth, counted in the store at each scrape."""

    def __init__(self, count_by_state: Callable[[], dict[int, int]]) -> None:
        self._count_by_state = count_by_state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._count_by_state()
        audits = GaugeMetricFamily("effcap_audits", "Audits in the store, by state", labels=["state"])
        for state in audit_pb2.AuditState.values():
            if state != audit_pb2.AUDIT_STATE_UNSPECIFIED:
                audits.add_metric(
                    [audit_pb2.AuditState.Name(state).removeprefix("AUDIT_STATE_").lower()], counts.get(state, 0)
                )
        yield audits
        yield GaugeMetricFamily(
            "effcap_audit_queue_depth", "Audits waiting for a worker", value=counts.get(audit_pb2.AUDIT_STATE_QUEUED, 0)
        )


class StoredBytesCollector(Collector):
    """Bytes each principal has stored, read from the store at each scrape (the bytes of an artifact two
    principals uploaded count for each of them: each would hold it alone if the other deleted theirs)."""

    def __init__(self, stored_bytes_by_owner: Callable[[], dict[str, int]]) -> None:
        self._stored_bytes_by_owner = stored_bytes_by_owner

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stored = GaugeMetricFamily("effcap_stored_bytes", "Artifact bytes stored, by owning principal", labels=["principal"])
        for principal, size in sorted(self._stored_bytes_by_owner().items()):
            stored.add_metric([principal], size)
        yield stored
