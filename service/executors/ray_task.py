"""The Ray task: one trial batch, JSON in, JSON out, on whichever worker Ray placed it.

Imported by Ray workers, which run it in their own processes: it sets the torch thread count to the CPUs the
task asked for (Ray sets OMP_NUM_THREADS to them before the worker loads torch) and trusts no file it has not
checked: `run_trial_batch` verifies every file's sha256 against the batch before reading it.
"""

from __future__ import annotations

import os
from typing import Any

from effcap.capacity.errors import InputError
from effcap.service.executors.threads import ThreadPlan, apply_thread_plan


def run_batch_task(batch_json: str, device: str, threads: int) -> dict[str, Any]:
    """The batch's results JSON (`results_to_json`), or {"invalid": [field, message, reason]} for bad input,
    which the driver raises as the audit's InputError (a plain value crosses Ray; an exception class may not)."""
    apply_thread_plan(ThreadPlan(threads, f"{threads} CPU(s) of the Ray task"))
    from effcap.capacity.analyses.trial_batch import TrialBatch, results_to_json, run_trial_batch
    from effcap.capacity.engine.device import pick_device

    try:
        batch = TrialBatch.model_validate_json(batch_json)
        results, strategy = run_trial_batch(batch, pick_device(device))
    except InputError as error:
        return {"invalid": [error.field, error.message, error.reason]}
    return {**results_to_json(results, strategy), "worker_pid": os.getpid()}
