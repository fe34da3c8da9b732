"""The Ray executor: an audit's trial batches as Ray tasks on a cluster, results back as each batch finishes.

The audit's worker process is the Ray driver (`ray.init(address=...)`, imported here, never by the server).
Each batch travels as its `TrialBatch` JSON; files travel by reference: the batch names them by path in the
shared data directory and by sha256, which the task checks before it reads them (decision in docs/ray.md).
A task asks for one GPU when batches train on CUDA, else for `ray_task_cpus` CPUs, and Ray retries it
(`max_retries`) when its worker process or node dies; finished batches are in the batch store by then and are
never rerun. SIGTERM (the scheduler's cancel) cancels the audit's outstanding tasks before the process exits.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

from effcap.capacity.analyses.trial_batch import results_from_json
from effcap.capacity.analyses.trial_executor import BatchStore, BatchWork, RunContext, TrialExecutor, TrialSources
from effcap.capacity.errors import InputError
from effcap.service.executors.config import ExecutorConfig
from effcap.service.executors.ray_task import run_batch_task
from effcap.service.executors.unavailable import RAY_UNREACHABLE, ExecutorUnavailable

log = logging.getLogger("effcap.service.executors.ray")
# How often the driver wakes while it waits for batches, so a SIGTERM is acted on promptly.
WAIT_S = 0.5
# How long a Ray head's port may take to accept a connection before the cluster counts as unreachable.
CONNECT_TIMEOUT_S = 5.0
# How long `ray.init` may take to join the cluster: a port that accepts TCP but is no Ray head (the dashboard's
# 8265 given by mistake) has it retry "Failed to connect to GCS" for minutes. The environment variable is for
# tests (and an operator whose cluster is slow to answer); a healthy head answers within seconds.
INIT_TIMEOUT_S = float(os.environ.get("EFFCAP_RAY_INIT_TIMEOUT_S", "60"))


class RayTrialExecutor(TrialExecutor):
    def __init__(
        self, config: ExecutorConfig, device: str, sources: TrialSources, store: BatchStore | None, on_batch=None
    ) -> None:
        """`device`: the server's --device ("auto": GPUs when the cluster has any, else CPUs)."""
        super().__init__(sources, store, config.max_batch_trials, on_batch)
        self._config = config
        self._ray = connect(config.ray_address)
        self._device = (
            device if device != "auto" else ("cuda" if self._ray.cluster_resources().get("GPU", 0) > 0 else "cpu")
        )

    def device_kind(self, local_kind: str) -> str:
        return self._device.split(":")[0]

    def _run_batches(self, works: list[BatchWork], context: RunContext) -> Iterator[BatchWork]:
        if not works:
            return
        if any(work.batch is None for work in works):
            raise ValueError("the Ray executor needs every batch in its JSON form (the audit's inputs by reference)")
        ray = self._ray
        gpu = self._device.startswith("cuda")
        resources: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": self._config.ray_task_cpus}
        task = ray.remote(run_batch_task).options(
            **resources, max_retries=self._config.ray_max_retries, retry_exceptions=False
        )
        threads = 1 if gpu else self._config.ray_task_cpus
        pending = {task.remote(work.batch.model_dump_json(), self._device, threads): work for work in works}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                for ref in done:
                    work = pending.pop(ref)
                    payload = ray.get(ref)
                    if "invalid" in payload:
                        raise InputError(*payload["invalid"])
                    work.results, work.strategy = results_from_json(payload)
                    log.info(
                        "trial batch %s (%d trials) finished in Ray worker %s",
                        work.key[:12],
                        len(work.indices),
                        payload.get("worker_pid"),
                    )
                    yield work
        finally:
            for ref in pending:  # cancelled, failed or interrupted: nothing else of this audit keeps running
                ray.cancel(ref, force=True)


def connect(address: str | None) -> Any:
    """Ray, connected to the cluster at `address` as this process's driver, with SIGTERM turned into an exit
    that runs the executor's clean-up (the default SIGTERM ends the process with no Python clean-up at all).

    ExecutorUnavailable when no cluster answers there: `ray.init` raises ConnectionError with its own advice
    for `auto` with no cluster, and for a HOST:PORT where nothing listens it retries for ever (over ten minutes
    observed, the audit RUNNING all along), so a HOST:PORT is first tried with a plain TCP connection, and
    `ray.init` itself gets INIT_TIMEOUT_S (a port that accepts TCP may still be no Ray head).
    """
    import ray

    if not ray.is_initialized():
        tried = address or "auto"
        _check_listening(tried)
        try:
            _init_within(ray, tried, INIT_TIMEOUT_S)
        except ConnectionError as error:
            log.warning("ray.init(address=%r) failed: %s", tried, error)
            why = _AUTO_NOT_FOUND if tried == "auto" else "Ray could not connect (its error is in the server log)"
            raise _unreachable(tried, why) from None
        except InitTimedOut:
            log.warning("ray.init(address=%r) did not connect within %g s", tried, INIT_TIMEOUT_S)
            raise _unreachable(tried, _no_head(tried)) from None
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    return ray


class InitTimedOut(Exception):
    """`ray.init` did not return within its bound (not a TimeoutError, which Ray itself may raise)."""


def _no_head(address: str) -> str:
    """Why a port that accepts TCP is still no cluster, with the port a head listens on by default."""
    usual = (
        "Ray Client listens on 10001 unless `ray start --head --ray-client-server-port` chose another"
        if address.startswith("ray://")
        else "a head's GCS listens on 6379 unless `ray start --head --port` chose another"
    )
    silent = f"something listens there, but no Ray head answered within {INIT_TIMEOUT_S:g} s"
    return f"{silent} ({usual}; the dashboard's 8265 is not it)"


def _init_within(ray: Any, address: str, timeout_s: float) -> None:
    """`ray.init`, given `timeout_s` to return: Ray has no option that bounds its GCS retries, so it runs in a
    daemon thread. One still retrying when the audit fails is left behind: the worker process, and the thread
    with it, ends once the failure is reported. InitTimedOut past the bound; `ray.init`'s own errors as raised.
    """
    outcome: list[BaseException | None] = []

    def init() -> None:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread, which raises it
            outcome.append(error)

    thread = threading.Thread(target=init, name="effcap-ray-init", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        raise InitTimedOut(f"ray.init(address={address!r}) took over {timeout_s:g} s")
    if outcome[0] is not None:
        raise outcome[0]


_AUTO_NOT_FOUND = "no Ray cluster runs on this machine (none in RAY_ADDRESS or in Ray's session files)"


def _check_listening(address: str) -> None:
    """Nothing more than a TCP connection to HOST:PORT (a `ray://` client address too); `auto` is left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise _unreachable(address, _no_connection(host, port, error)) from None


def _no_connection(host: str, port: str, error: OSError) -> str:
    """Why a TCP connection failed, by cause: a refusal is immediate, only silence is worth a timeout."""
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return f"nothing listens at {host}:{port} (connection refused)"
    if isinstance(error, TimeoutError):
        return f"nothing answered at {host}:{port} within {CONNECT_TIMEOUT_S:g} s"
    if isinstance(error, socket.gaierror):
        return f"the host {host} cannot be resolved ({error.strerror})"
    return f"{host}:{port} cannot be reached ({error.strerror or error})"


def _unreachable(address: str, why: str) -> ExecutorUnavailable:
    message = (
        f"the Ray cluster of `effcap serve --ray-address {address}` cannot be reached: {why}. Start it (`ray start "
        f"--head`) or restart the server with the head's --ray-address HOST:PORT, then create the audit again"
    )
    return ExecutorUnavailable(RAY_UNREACHABLE, message, {"ray_address": address})
