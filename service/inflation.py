"""The server's side of input validation: a few capped processes that inflate and check an audit's inputs.

Loading a dataset decompresses it, converts it to float32 and builds the model to check the
checkpoint against; done in the server, a 1 MiB compressed upload drove it to a 2 GiB peak (three at
once: 5.4 GiB) and made it import torch. Here that work runs in `effcap.service.inflation_worker`
processes, each started once and reused, each with its data segment capped at `cap_bytes` above what
its imports took. At most `processes` run at once; a request that finds all of them busy waits up to
`wait_s`, then is refused with RESOURCE_EXHAUSTED and a retry hint. A process that runs out of
memory answers RESOURCE_EXHAUSTED naming the input and exits; one that dies or hangs is killed and
replaced, and the request gets RESOURCE_EXHAUSTED naming the field. The server itself never fails.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

import grpc

from effcap.protos.v1 import audit_pb2
from effcap.service.audit_job import AuditJob
from effcap.service.errors import ApiError
from effcap.service.limits import AuditLimits

log = logging.getLogger("effcap.service.inflation")
# Importing torch on a busy 2-core machine has taken 20 s.
START_TIMEOUT_S = 180.0
RETRY_AFTER_S = 5.0
# The option that raises the cap: every refusal for memory names it, so the operator reading it knows what to change.
CAP_OPTION = "effcap serve --max-inflated-bytes"


def memory_cap_note(cap_bytes: int) -> str:
    """The cap as every refusal for memory states it (header check, capped process out of memory, process gone)."""
    return f"this server gives input validation {cap_bytes:,} bytes of memory (raise it with {CAP_OPTION} BYTES)"


class _ChildGone(Exception):
    """The process died, hung past its deadline, or broke the protocol."""


class _Child:
    def __init__(self, cap_bytes: int) -> None:
        command = [sys.executable, "-m", "effcap.service.inflation_worker", str(cap_bytes)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._pending = b""

    def wait_ready(self) -> None:
        ready = self.read(START_TIMEOUT_S)
        log.info(
            "input-validation process %d ready, data segment capped at %s bytes", self.pid, ready.get("limit_bytes")
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def ask(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except OSError as error:
            raise _ChildGone(f"cannot write to it: {error}") from None
        return self.read(timeout_s)

    def read(self, timeout_s: float) -> dict[str, Any]:
        """The next JSON line from the child, within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        fd = self.process.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ChildGone(f"no answer within {timeout_s:g} s")
            if not select.select([fd], [], [], remaining)[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise _ChildGone(f"it exited with code {self.process.wait()}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            raise _ChildGone(f"it answered {line[:200]!r}, not JSON") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()


def job_payload(job: AuditJob) -> dict[str, Any]:
    """The job's fields that validation reads, as JSON values."""
    encode = lambda data: base64.b64encode(data).decode()  # noqa: E731
    optional_path = lambda path: str(path) if path is not None else None  # noqa: E731
    return {
        "model_path": str(job.model_path),
        "model_digest": encode(job.model_digest.SerializeToString()) if job.model_digest is not None else None,
        "dataset": encode(job.dataset.SerializeToString()),
        "dataset_path": optional_path(job.dataset_path),
        "spec": encode(job.spec.SerializeToString()),
        "initial_model_path": optional_path(job.initial_model_path),
        "onnx_limits": [job.onnx_limits.max_nodes, job.onnx_limits.max_weight_bytes],
    }


class InflationPool:
    def __init__(self, cap_bytes: int, processes: int = 2, wait_s: float = 30.0, timeout_s: float = 600.0) -> None:
        self.cap_bytes = cap_bytes
        self._slots = threading.BoundedSemaphore(processes)
        self._processes = processes
        self._wait_s = wait_s
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._closed = False

    def warm(self) -> None:
        """Start one process in the background, so that the first CreateAudit does not wait for torch's import."""
        threading.Thread(target=self._warm, name="effcap-inflation-warm", daemon=True).start()

    def validate(self, job: AuditJob, limits: AuditLimits) -> int:
        """CreateAudit's checks of the inputs (load_inputs, the model's size, the audit's cost); ApiError if any fails.

        Returns the training examples the audit will process, which the per-principal quota counts.
        """
        answer = self._call("validate", {**job_payload(job), "limits": asdict(limits)}, _field_of(job))
        return int(answer["training_examples"])

    def estimate(
        self, job: AuditJob, calibration: dict[str, object], max_training_examples: int, audits_ahead: int
    ) -> audit_pb2.AuditEstimate:
        payload = {
            **job_payload(job),
            "calibration": calibration,
            "max_training_examples": max_training_examples,
            "audits_ahead": audits_ahead,
        }
        answer = self._call("estimate", payload, _field_of(job))
        return audit_pb2.AuditEstimate.FromString(base64.b64decode(answer["estimate"]))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children = list(self._all)
            self._idle.clear()
        for child in children:
            child.stop()

    def _warm(self) -> None:
        if not self._slots.acquire(blocking=False):
            return
        try:
            with self._lock:
                if self._idle or self._all or self._closed:
                    return
            self._give_back(self._start())
        except _ChildGone as error:
            if not self._closed:  # else close() stopped it on purpose
                log.warning("the input-validation process did not start: %s", error)
        finally:
            self._slots.release()

    def _call(self, task: str, payload: dict[str, Any], field: str) -> dict[str, Any]:
        if not self._slots.acquire(timeout=self._wait_s):
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "VALIDATION_BUSY",
                f"all {self._processes} input-validation processes stayed busy for {self._wait_s:g} s; retry shortly",
                retry_after_s=RETRY_AFTER_S,
            )
        try:
            with self._lock:
                child = self._idle.pop() if self._idle else None
            try:
                child = child or self._start()
                answer = child.ask({"task": task, "payload": payload}, self._timeout_s)
            except _ChildGone as error:
                if child is not None:
                    self._discard(child)
                log.error("input validation failed: the process %s", error)
                raise ApiError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "INPUT_VALIDATION_ENDED",
                    f"{field}: the process checking the inputs ended before answering ({error}); an input may need "
                    f"more memory than that: {memory_cap_note(self.cap_bytes)}",
                    field=field,
                    metadata={"limit_bytes": str(self.cap_bytes)},
                ) from None
            if answer.get("exiting"):
                self._discard(child)
            else:
                self._give_back(child)
        finally:
            self._slots.release()
        if "error" in answer:
            raise _api_error(answer["error"])
        return answer

    def _start(self) -> _Child:
        child = _Child(self.cap_bytes)
        with self._lock:
            self._all.add(child)  # before it is ready: close() stops it even while it imports
        try:
            child.wait_ready()
        except _ChildGone:
            self._discard(child)
            raise
        return child

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(child)
                return
        self._discard(child)

    def _discard(self, child: _Child) -> None:
        with self._lock:
            self._all.discard(child)
        child.stop()


def _field_of(job: AuditJob) -> str:
    """The input most likely at fault when validation dies without saying: the dataset, if one was uploaded."""
    return "dataset.artifact" if job.dataset_path is not None else "model"


def _api_error(error: dict[str, Any]) -> ApiError:
    if error["code"] == "INTERNAL":
        log.error("input validation failed unexpectedly: %s", error["message"])
        return ApiError(grpc.StatusCode.INTERNAL, "INTERNAL", "internal error; see the server log")
    field = error.get("field")
    message = (
        error["message"] if field is None or error["code"] != "INVALID_ARGUMENT" else f"{field}: {error['message']}"
    )
    return ApiError(
        grpc.StatusCode[error["code"]], error["reason"], message, field=field, metadata=error.get("metadata")
    )
