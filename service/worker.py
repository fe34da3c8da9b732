"""The worker process: runs one audit and reports over a pipe.

Spawned (never forked: gRPC does not survive fork), one per running audit, so a crash or an
out-of-memory kill takes down only that audit. Messages are tuples of plain values and serialized
protos; if the server goes away the pipe breaks and the worker exits. This module imports no torch:
the worker sets its thread pool and OpenMP wait policy first, since libgomp reads them once, at load.
"""

from __future__ import annotations

import logging
import sys
import traceback
from multiprocessing.connection import Connection

from effcap.capacity.errors import InputError
from effcap.protos.v1 import report_pb2
from effcap.service.executors.threads import ThreadPlan, apply_thread_plan
from effcap.service.executors.unavailable import ExecutorUnavailable


class PipeSink:
    """ProgressSink that forwards to the server over the worker's pipe."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def progress(self, stage: str, trials_done: int, trials_total: int, fraction: float) -> None:
        self._connection.send(("progress", stage, trials_done, trials_total, fraction))

    def trial_finished(self, trial: report_pb2.TrialResult) -> None:
        self._connection.send(("trial", trial.SerializeToString()))


def worker_main(connection: Connection, wire_job: tuple, threads: ThreadPlan) -> None:
    threads = apply_thread_plan(threads)
    from effcap.service.audit_job import AuditJob
    from effcap.service.runner import run_audit

    job = AuditJob.from_wire(wire_job)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker {job.audit} %(levelname)s %(message)s", stream=sys.stderr)
    try:
        report = run_audit(job, PipeSink(connection), threads)
        connection.send(("report", report.SerializeToString()))
    except InputError as error:
        connection.send(("invalid", error.field, error.message, error.reason))
    except ExecutorUnavailable as error:
        connection.send(("unavailable", error.reason, error.message, error.metadata))
    except BrokenPipeError:
        return  # the server is gone; nobody to report to
    except Exception as error:  # noqa: BLE001 - reported to the server as the audit's failure
        traceback.print_exc()
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()
