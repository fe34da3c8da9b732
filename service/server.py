"""Assembling and running the gRPC server: stores, scheduler, servicers, health and reflection."""

from __future__ import annotations

import logging
import os
import signal
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.longrunning import operations_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from effcap.capacity.graphs.onnx_wire import OnnxLimits
from effcap.protos.v1 import admin_pb2, admin_pb2_grpc, artifact_pb2, artifact_pb2_grpc, audit_pb2, audit_pb2_grpc
from effcap.service.admin_servicer import AdminServicer
from effcap.service.artifacts import ArtifactStore
from effcap.service.auth.activity import ActivityLog
from effcap.service.auth.authenticator import Authenticator
from effcap.service.auth.exposure import check_exposure
from effcap.service.auth.keys import KeyRing
from effcap.service.auth.sqlite_file import STORE_FILE
from effcap.service.auth.tls import ServerTls
from effcap.service.call_guard import CallGuard
from effcap.service.data_dir_lock import DataDirInUse, DataDirLock
from effcap.service.estimator import AuditEstimator
from effcap.service.executors.config import ExecutorConfig
from effcap.service.executors.threads import plan_threads
from effcap.service.health_listing import ListingHealthServicer
from effcap.service.inflation import InflationPool
from effcap.service.limits import AuditLimits, LongCallSlots
from effcap.service.metrics_http import MetricsHttpServer, serve_metrics, startup_message
from effcap.service.observability import AuditStateCollector, CallObserver, StoredBytesCollector, WorkerExits
from effcap.service.quotas import Quotas
from effcap.service.ready_file import write_ready_file
from effcap.service.retention import (
    ArtifactLeases,
    RetentionPolicy,
    RetentionSweeper,
    remove_orphaned_artifacts,
    remove_partial_uploads,
)
from effcap.service.scheduler import Scheduler
from effcap.service.servicers import ArtifactServicer, AuditServicer, OperationsServicer
from effcap.service.storage_health import StorageProbe
from effcap.service.store import AuditStore

log = logging.getLogger("effcap.service")

GIB = 1 << 30
MIB = 1 << 20
SERVICE_NAMES = (
    artifact_pb2.DESCRIPTOR.services_by_name["ArtifactService"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    "google.longrunning.Operations",
)


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    # 0 picks a free port (reported by EffcapServer.port and the ready file).
    port: int = 50051
    max_artifact_bytes: int = 4 * GIB
    max_message_bytes: int = 8 * MIB
    max_running_audits: int = 1
    # torch threads per worker; None divides the CPUs the server is given among max_running_audits.
    worker_threads: int | None = None
    max_attempts: int = 3
    device: str = "auto"
    rpc_threads: int = 32
    # Uploads, event streams and waits at once (limits.py); the other threads stay for short calls.
    max_long_calls: int = 24
    # An upload with no data for this long is cancelled.
    upload_idle_s: float = 60.0
    audit_limits: AuditLimits = AuditLimits()
    # What an uploaded ONNX model may hold, checked before its weights are parsed.
    onnx_limits: OnnxLimits = OnnxLimits()
    # Prometheus /metrics on this port; None serves none, 0 picks a free port.
    metrics_port: int | None = None
    # Where /metrics listens: loopback unless asked; elsewhere the same rule as `host` (exposure.py).
    metrics_host: str = "127.0.0.1"
    # None: plaintext (loopback, or --insecure).
    tls: ServerTls | None = None
    # Listen beyond loopback without TLS or authentication, and serve anonymous callers from anywhere while no key exists.
    insecure: bool = False
    quotas: Quotas = Quotas()
    # Memory each input-validation process may take for an audit's inputs, and how many run at once (inflation.py).
    max_inflated_bytes: int = 4 * GIB
    validation_processes: int = 2
    # What expires: ended audits' reports and unused artifacts (retention.py).
    retention: RetentionPolicy = RetentionPolicy()

    # Where trial batches run (--executor, --ray-address) and where finished ones are kept.
    executor: ExecutorConfig = ExecutorConfig()


class EffcapServer:
    def __init__(self, config: ServerConfig) -> None:
        if os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
            raise SystemExit("refusing to start: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set, which would let torch.load run pickled code")
        self.config = config
        try:  # before the store opens: a second server must not re-queue the first one's running audits
            self._data_dir_lock = DataDirLock(config.data_dir).acquire()
        except DataDirInUse as error:
            raise SystemExit(f"refusing to start: {error}") from None
        self.store = AuditStore(config.data_dir / STORE_FILE)
        self.keys = KeyRing(config.data_dir / STORE_FILE)
        self.activity = ActivityLog(config.data_dir / STORE_FILE)
        check_exposure(config.host, config.tls, self.keys.any_issued(), config.insecure)
        if config.metrics_port is not None:
            risk = "could read every principal's name, calls and stored bytes"
            keys_issued = self.keys.any_issued()
            check_exposure(config.metrics_host, config.tls, keys_issued, config.insecure, "serve metrics", risk)
        artifacts_dir = config.data_dir / "artifacts"
        remove_partial_uploads(artifacts_dir / "incoming")  # the lock is ours: no upload is under way
        self.artifacts = ArtifactStore(artifacts_dir, self.store, config.max_artifact_bytes, config.onnx_limits)
        remove_orphaned_artifacts(self.store, self.artifacts)  # what a deletion cut short by a crash left
        self.worker_threads = plan_threads(config.max_running_audits, config.worker_threads)
        self.metrics = CollectorRegistry()
        self.metrics.register(AuditStateCollector(self.store.count_by_state))
        self.metrics.register(StoredBytesCollector(self.store.stored_bytes_by_owner))
        self._metrics_http: MetricsHttpServer | None = None
        self._storage = StorageProbe(config.data_dir, self._storage_changed)
        long_calls = LongCallSlots(min(config.max_long_calls, config.rpc_threads - 1))
        authenticate = Authenticator(self.keys, anonymous_from_anywhere=config.insecure)
        guard = CallGuard(long_calls, CallObserver(self.metrics), lambda: self._storage.writable, authenticate)
        exits = WorkerExits(self.metrics)
        self.scheduler = Scheduler(
            self.store,
            self.artifacts,
            config.max_running_audits,
            config.device,
            self.worker_threads,
            exits,
            config.executor,
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.rpc_threads, thread_name_prefix="effcap-rpc"),
            interceptors=[guard],
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                # Long event streams: ping idle connections, and accept clients' keepalive pings.
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
                # Without this, Linux lets a second server bind the same port and requests alternate between them.
                ("grpc.so_reuseport", 0),
            ],
        )
        estimator = AuditEstimator(config.data_dir, config.device, self.worker_threads)
        self.inflation = InflationPool(config.max_inflated_bytes, config.validation_processes)
        leases = ArtifactLeases()
        artifact_servicer = ArtifactServicer(
            self.artifacts, long_calls, config.upload_idle_s, self.activity, self.store, config.quotas, leases
        )
        artifact_pb2_grpc.add_ArtifactServiceServicer_to_server(artifact_servicer, self._server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(self.activity), self._server)
        self.retention = RetentionSweeper(
            self.store, self.artifacts, leases, config.retention, config.executor.batch_store
        )
        audit_servicer = AuditServicer(
            self.store,
            self.artifacts,
            self.scheduler,
            long_calls,
            config.audit_limits,
            estimator,
            self.activity,
            config.quotas,
            self.inflation,
            leases,
        )
        audit_pb2_grpc.add_AuditServiceServicer_to_server(audit_servicer, self._server)
        operations_servicer = OperationsServicer(self.store, self.scheduler, long_calls, self.activity)
        operations_pb2_grpc.add_OperationsServicer_to_server(operations_servicer, self._server)
        self._health = ListingHealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server)
        try:
            where = f"{config.host}:{config.port}"
            tls = config.tls
            self.port = self._server.add_secure_port(where, tls.credentials()) if tls else self._server.add_insecure_port(where)
        except RuntimeError:  # grpcio raises where older releases returned 0
            self.port = 0
        if self.port == 0:
            where = f"{config.host}:{config.port}"
            why = f"the port is taken (another effcap serve?), or {config.host} is no address of this machine"
            raise SystemExit(f"cannot listen on {where}: {why}")

    def start(self) -> None:
        requeued, failed = self.store.requeue_interrupted(self.config.max_attempts)
        if requeued or failed:
            log.info("after restart: %d audits re-queued, %d failed (out of attempts)", len(requeued), len(failed))
        self.scheduler.start()
        self._server.start()
        for name in ("", *SERVICE_NAMES):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._storage.start()
        if self.config.metrics_port is not None:
            config = self.config
            port = config.metrics_port
            self._metrics_http = serve_metrics(self.metrics, config.metrics_host, port, config.tls, self.keys)
            bound = self._metrics_http.server_address[1]
            log.info("%s", startup_message(config.tls is not None, config.metrics_host, bound, self.keys.any_issued()))
        self.inflation.warm()  # once nothing can fail the start any more
        self.retention.start()
        transport = "plaintext" if self.config.tls is None else "mutual TLS" if self.config.tls.client_ca else "TLS"
        log.info("effcap listening on %s:%d (%s), data in %s", self.config.host, self.port, transport, self.config.data_dir)
        log.info("each worker uses %d torch thread(s): %s", self.worker_threads.threads, self.worker_threads.source)

    def stop(self, grace: float = 5.0) -> None:
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
        self.inflation.close()
        self.retention.stop()
        self._storage.stop()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
        self.scheduler.stop()
        self.store.close()
        self.keys.close()
        self.activity.close()
        self._data_dir_lock.release()

    def _storage_changed(self, writable: bool) -> None:
        """NOT_SERVING while the data directory cannot take writes; SERVING again once it can."""
        status = health_pb2.HealthCheckResponse.SERVING if writable else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *SERVICE_NAMES):
            self._health.set(name, status)

    def wait(self) -> None:
        self._server.wait_for_termination()


def serve(config: ServerConfig, ready_file: Path | None = None) -> None:
    """Run until SIGINT or SIGTERM; write the address a local client dials to `ready_file` once listening."""
    server = EffcapServer(config)
    server.start()
    if ready_file is not None:
        write_ready_file(ready_file, config.host, server.port)
    # The handler only records the signal: taking a lock there (Event.set, logging) can deadlock if
    # the signal lands while the main thread holds that lock.
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _frame: received.append(signum))
    while not received:
        time.sleep(0.2)
    log.info("signal %d: shutting down", received[0])
    server.stop()
