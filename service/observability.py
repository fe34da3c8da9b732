"""What an operator watches: Prometheus metrics and one structured access-log line per call.

Metrics live in a registry of the server's own (several servers in one process, as in tests, would
collide in the default one). Audit counts by state and the queue depth are read from the store when
scraped, so they can never drift from what the store holds. The access log is one JSON object per
line, so that log tools can filter by method or status without parsing prose; the principal is
"anonymous" until calls carry an identity.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from effcap.protos.v1 import audit_pb2

access_log = logging.getLogger("effcap.access")
ANONYMOUS = "anonymous"
# Seconds: short calls answer in milliseconds, streams and waits last up to minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600)


class CallObserver:
    """Counts and times every call by method and status, and logs it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "effcap_rpc_requests", "RPCs answered, by method and status code", ["method", "code"], registry=registry
        )
        self.latency = Histogram(
            "effcap_rpc_latency_seconds",
            "RPC latency, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def finished(self, method: str, code: grpc.StatusCode, seconds: float, context: grpc.ServicerContext) -> None:
        self.calls.labels(method=method, code=code.name).inc()
        self.latency.labels(method=method).observe(seconds)
        line = {
            "principal": ANONYMOUS,
            "method": method,
            "code": code.name,
            "latency_ms": round(seconds * 1000, 3),
            "peer": context.peer(),
        }
        access_log.info(json.dumps(line))


class WorkerExits:
    """Worker processes that ended, by cause (succeeded, invalid_input, analysis_error, crashed, cancelled)."""

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


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Serve /metrics over HTTP on a daemon thread (port 0 picks a free one: `server_address[1]`)."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise SystemExit(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from None
    return server
