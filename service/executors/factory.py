"""The trial executor an audit's worker uses, from the server's executor settings."""

from __future__ import annotations

import logging

from effcap.capacity.analyses.trial_executor import TrialExecutor, TrialSources
from effcap.service.executors.batch_store import FileBatchStore
from effcap.service.executors.config import ExecutorConfig

log = logging.getLogger("effcap.service.executors")


def make_executor(config: ExecutorConfig, device: str, sources: TrialSources) -> TrialExecutor:
    """Local (this process) or Ray; both cut the same batches and share the batch store (either resumes either)."""
    store = FileBatchStore(config.batch_store) if config.batch_store is not None else None
    if config.kind == "ray":
        from effcap.service.executors.ray_executor import RayTrialExecutor  # imports ray: only in a worker that uses it

        return RayTrialExecutor(config, device, sources, store, _log_batch)
    return TrialExecutor(sources, store, config.max_batch_trials, _log_batch)


def _log_batch(how: str, trials: int) -> None:
    """One line per batch: "ran" or "stored" (read back from the batch store after a restart)."""
    log.info(
        "trial batch of %d trials: %s", trials, "ran" if how == "ran" else "restored from the batch store, not rerun"
    )
