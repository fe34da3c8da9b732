"""Runs queued audits in worker processes, at most `max_running` at a time (a device semaphore).

A claim moves an audit to RUNNING in the store before its worker starts, so a restart finds it and
re-queues it. A monitor thread per worker turns the worker's messages into stored events; whatever
happens to the worker (success, bad input, exception, crash, cancel), the audit ends in exactly one
terminal state with a reason, and the server keeps serving.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import grpc

from effcap.protos.v1 import audit_pb2, report_pb2
from effcap.service.artifacts import ArtifactStore
from effcap.service.audit_job import AuditJob
from effcap.service.audit_log import log_started
from effcap.service.errors import ApiError
from effcap.service.executors.config import ExecutorConfig
from effcap.service.executors.threads import ThreadPlan, plan_threads
from effcap.service.storage_health import retry_until_stored
from effcap.service.store import AuditRecord, AuditStore, State
from effcap.service.worker import worker_main

log = logging.getLogger("effcap.service.scheduler")


@dataclass
class _Running:
    process: BaseProcess
    connection: Connection
    cancelled: threading.Event = field(default_factory=threading.Event)


class Scheduler:
    POLL_INTERVAL_S = 0.5

    def __init__(
        self,
        store: AuditStore,
        artifacts: ArtifactStore,
        max_running: int = 1,
        device: str = "auto",
        worker_threads: ThreadPlan | None = None,
        on_worker_exit: Callable[[str], None] = lambda cause: None,
        executor: ExecutorConfig = ExecutorConfig(),
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._max_running = max_running
        self._device = device
        # Each worker's share of the CPUs, so that `max_running` workers never claim more threads than cores.
        self._worker_threads = worker_threads or plan_threads(max_running)
        # Called with why each worker ended (metrics: succeeded, invalid_input, analysis_error, crashed, cancelled).
        self._on_worker_exit = on_worker_exit
        self._executor = executor
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="effcap-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """A new audit was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop workers without ending their audits: they stay RUNNING and resume on restart."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=5)
        with self._lock:
            running = list(self._running.values())
        for worker in running:
            worker.process.terminate()
        for worker in running:
            worker.process.join(timeout=10)

    def cancel(self, audit_id: str) -> bool:
        """Cancel a queued or running audit; False if it had already ended.

        The store is marked first and the worker looked up after: a worker registered later sees the
        mark itself (`_launch`), so none can start unnoticed between the two.
        """
        cancelled = self._store.finish(
            audit_id,
            State.AUDIT_STATE_CANCELLED,
            error=ApiError(grpc.StatusCode.CANCELLED, "CANCELLED_BY_CLIENT", "cancelled by a client").to_status(),
            message="cancelled",
        )
        if cancelled:
            with self._lock:
                worker = self._running.get(audit_id)
                if worker is not None:
                    worker.cancelled.set()
            if worker is not None:
                worker.process.terminate()
        return cancelled

    def running_pids(self) -> dict[str, int | None]:
        with self._lock:
            return {audit_id: w.process.pid for audit_id, w in self._running.items()}

    def _loop(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                while self._has_free_slot() and not self._stopping.is_set():
                    record = self._store.claim_next_queued()
                    if record is None:
                        break
                    self._launch(record)
                failing = False
            except Exception as error:  # noqa: BLE001 - a store error (a full disk) must not end the scheduler
                if not failing:
                    log.error("scheduling paused by a store error (%s: %s); retrying", type(error).__name__, error)
                failing = True
            self._wake.wait(self.POLL_INTERVAL_S)
            self._wake.clear()

    def _has_free_slot(self) -> bool:
        with self._lock:
            return len(self._running) < self._max_running

    def _launch(self, record: AuditRecord) -> None:
        if self._cancelled_since_claim(record):
            return
        try:
            job = self._job_for(record)
            parent_end, child_end = self._context.Pipe(duplex=False)
            process = self._context.Process(target=worker_main, args=(child_end, job.to_wire(), self._worker_threads), name=f"effcap-worker-{record.id}", daemon=True)
            process.start()
            child_end.close()
        except Exception as error:  # noqa: BLE001 - the audit fails with the reason; the scheduler lives on
            log.exception("cannot start %s", record.name)
            message = f"cannot start a worker for the audit: {error}"
            failure = ApiError(grpc.StatusCode.INTERNAL, "WORKER_START_FAILED", message)
            retry_until_stored(lambda: self._fail(record.id, failure), self._stopping, f"the failure of {record.name}")
            return
        worker = _Running(process, parent_end)
        with self._lock:
            self._running[record.id] = worker
        if self._cancelled_since_claim(record):  # while the worker was starting
            worker.cancelled.set()
            process.terminate()
        threading.Thread(target=self._monitor, args=(record, worker), name=f"effcap-monitor-{record.id}", daemon=True).start()
        started = self._progress(record.name, "worker started", 0, 0, 0.0)
        self._store.append_event(record.id, started, message=f"attempt {record.attempts} started")
        log_started(record.name, record.attempts, process.pid)

    def _cancelled_since_claim(self, record: AuditRecord) -> bool:
        current = self._store.get(record.id)
        return current is None or current.done

    def _job_for(self, record: AuditRecord) -> AuditJob:
        request = record.request
        dataset_path = None
        if request.dataset.WhichOneof("source") == "artifact":
            dataset_path = self._artifacts.path(request.dataset.artifact.sha256)
        return AuditJob(
            audit=record.name,
            model_path=self._artifacts.path(request.model.sha256),
            model_digest=request.model,
            dataset=request.dataset,
            dataset_path=dataset_path,
            spec=request.spec,
            device=self._device,
            initial_model_path=self._artifacts.path(request.initial_model.sha256) if request.HasField("initial_model") else None,
            onnx_limits=self._artifacts.onnx_limits,
            executor=self._executor,
        )

    def _monitor(self, record: AuditRecord, worker: _Running) -> None:
        ended: list[str] = []  # the cause, once a message ended the audit
        # Trials an earlier attempt already reported: a resumed audit reports its stored batches again, once is enough.
        earlier = self._store.events_after(record.id, 0)
        reported = {_trial_key(e.trial_finished) for e in earlier if e.HasField("trial_finished")}
        try:
            while True:
                try:
                    message = worker.connection.recv()
                except (EOFError, OSError):
                    break
                # A full disk holds the message (and, through the pipe, the worker) until it is stored.
                if message[0] == "trial":
                    key = _trial_key(report_pb2.TrialResult.FromString(message[1]))
                    if key in reported:
                        continue
                    reported.add(key)
                store = lambda message=message: ended.extend(self._handle(record, message))  # noqa: E731
                retry_until_stored(store, self._stopping, f"an event of {record.name}")
        finally:
            worker.connection.close()
            worker.process.join()
            with self._lock:
                self._running.pop(record.id, None)
            self._wake.set()
        if ended or worker.cancelled.is_set() or self._stopping.is_set():
            self._on_worker_exit(ended[0] if ended else "cancelled" if worker.cancelled.is_set() else "server_stopping")
            return
        exit_code = worker.process.exitcode
        self._on_worker_exit("crashed")
        message = f"the worker process exited with code {exit_code} before finishing"
        failure = ApiError(grpc.StatusCode.INTERNAL, "WORKER_EXITED", message, metadata={"exit_code": str(exit_code)})
        retry_until_stored(lambda: self._fail(record.id, failure), self._stopping, f"the failure of {record.name}")

    def _handle(self, record: AuditRecord, message: tuple) -> list[str]:
        """Store one worker message; the cause when it ended the audit, else nothing."""
        kind = message[0]
        if kind == "progress":
            _, stage, done, total, fraction = message
            self._store.append_event(record.id, self._progress(record.name, stage, done, total, fraction))
        elif kind == "trial":
            self._store.append_event(record.id, None, trial=report_pb2.TrialResult.FromString(message[1]))
        elif kind == "report":
            report = report_pb2.AuditReport.FromString(message[1])
            self._store.finish(record.id, State.AUDIT_STATE_SUCCEEDED, report=report, message="succeeded")
            return ["succeeded"]
        elif kind == "invalid":
            _, field_path, text, reason = message
            self._fail(record.id, ApiError(grpc.StatusCode.INVALID_ARGUMENT, reason, f"{field_path}: {text} ({reason})", field=field_path))
            return ["invalid_input"]
        elif kind == "unavailable":  # the executor's cluster (Ray) cannot be reached: the set-up, not a bug
            _, reason, text, metadata = message
            self._fail(record.id, ApiError(grpc.StatusCode.UNAVAILABLE, reason, text, metadata=metadata))
            return ["executor_unavailable"]
        elif kind == "error":
            self._fail(record.id, ApiError(grpc.StatusCode.INTERNAL, "ANALYSIS_FAILED", f"the analysis failed: {message[1]}"))
            return ["analysis_error"]
        return []

    def _fail(self, audit_id: str, error: ApiError) -> None:
        """End the audit FAILED with a status that carries ErrorInfo (and the field, when bad input)."""
        self._store.finish(audit_id, State.AUDIT_STATE_FAILED, error=error.to_status(), message=f"failed: {error.message}")

    @staticmethod
    def _progress(name: str, stage: str, done: int, total: int, fraction: float) -> audit_pb2.AuditProgress:
        return audit_pb2.AuditProgress(audit=name, stage=stage, trials_done=done, trials_total=total, fraction=fraction)


def _trial_key(trial: report_pb2.TrialResult) -> bytes:
    """What identifies a trial within its audit: its condition and seed."""
    return trial.condition.SerializeToString(deterministic=True) + trial.seed.to_bytes(8, "little", signed=False)
