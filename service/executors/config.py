"""Which executor runs an audit's trial batches, as plain values that cross into the worker process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorConfig:
    """`effcap serve --executor ... --ray-address ...`; the default is the worker process itself, with no store."""

    kind: str = "local"
    # Ray's address (`auto`: the cluster this machine is part of, as `ray start` left it); only for kind "ray".
    ray_address: str | None = None
    # CPUs a Ray task asks for, and the torch threads it trains with.
    ray_task_cpus: int = 1
    # Attempts beyond the first for a batch whose Ray worker process or node died.
    ray_max_retries: int = 3
    # Finished batches' results (the server's <data-dir>/batches); None stores nothing (`effcap audit --local`).
    batch_store: Path | None = None
    # At most this many trials per batch (None: as many as the memory estimate allows, up to the engine's stack).
    max_batch_trials: int | None = None
