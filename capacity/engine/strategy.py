"""Choosing how to train a set of trials, and running them in memory-sized batches.

Two strategies compute the same thing: `vmap` steps K stacked trials with one call (batched.py);
`sequential` trains one module at a time (trainer.py). Which is faster depends on the device and on
how much work one step of one trial is (bench/engine_throughput.py measures it; bench/RESULTS.md
has the numbers): on a GPU stacking wins by an order of magnitude; on a CPU it wins only while a
step is small enough that Python overhead dominates. The choice is a pure function of architecture
and device, so an audit on the CPU gives the same report every time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch

from effcap.capacity.engine.batched import BatchEpochCallback, SharedData, TrialFinishedCallback, TrialInputs, train_batched
from effcap.capacity.engine.trainer import DeviceData, EpochRecord, TrialOutcome, train_trial
from effcap.capacity.models import ArchitectureSpec, build_model
from effcap.capacity.models.flops import multiply_adds
from effcap.capacity.specs import TrainingSpec

log = logging.getLogger("effcap.capacity.engine")

Strategy = Literal["vmap", "sequential"]
# Per-example multiply-adds below which stacking trials beats one-at-a-time on a CPU (bench/RESULTS.md,
# "engine strategy on 2 CPU cores": at 32 trials an MLP 64-128-10 (9.5k) runs 1.6x faster stacked,
# while an MLP 64-512-512-10 (300k) and a 16-32 channel CNN on 8x8 (83k) run 1.2-1.9x slower).
CPU_VMAP_MAX_MULTIPLY_ADDS = 32_768


@dataclass(frozen=True)
class EngineOptions:
    # None: choose by architecture and device (choose_strategy).
    strategy: Strategy | None = None
    # Largest number of trials stacked in one batch; OOM halves it.
    max_trials_per_batch: int = 64


def choose_strategy(architecture: ArchitectureSpec, device: torch.device) -> Strategy:
    if device.type != "cpu":
        return "vmap"
    work = multiply_adds(build_model(architecture, device="meta"), architecture.input_shape)
    return "vmap" if work <= CPU_VMAP_MAX_MULTIPLY_ADDS else "sequential"


def train_trials(
    architecture: ArchitectureSpec,
    shared: SharedData,
    trials: list[TrialInputs],
    training: TrainingSpec,
    init_state: dict[str, torch.Tensor] | None = None,
    options: EngineOptions = EngineOptions(),
    on_epoch: BatchEpochCallback | None = None,
    on_trial_finished: TrialFinishedCallback | None = None,
) -> tuple[list[TrialOutcome], Strategy]:
    """Train all trials; outcomes in the order of `trials`, and the strategy that ran them."""
    strategy = options.strategy or choose_strategy(architecture, shared.x_train.device)
    outcomes: list[TrialOutcome] = []
    if strategy == "sequential":
        for index, trial in enumerate(trials):
            outcomes.append(_train_one(architecture, shared, trial, training, init_state, index, on_epoch, on_trial_finished))
        return outcomes, strategy
    size = options.max_trials_per_batch
    for start in range(0, len(trials), size):
        chunk = list(range(start, min(start + size, len(trials))))
        outcomes.extend(_train_halving_on_oom(architecture, shared, trials, chunk, training, init_state, on_epoch, on_trial_finished))
    return outcomes, strategy


def _train_halving_on_oom(
    architecture: ArchitectureSpec,
    shared: SharedData,
    trials: list[TrialInputs],
    chunk: list[int],
    training: TrainingSpec,
    init_state: dict[str, torch.Tensor] | None,
    on_epoch: BatchEpochCallback | None,
    on_trial_finished: TrialFinishedCallback | None,
) -> list[TrialOutcome]:
    """Train the trials at `chunk`; out of memory, retry as two halves (never fail the audit for it)."""
    relabel = lambda records: {chunk[i]: r for i, r in records.items()}  # noqa: E731
    try:
        return train_batched(
            architecture,
            shared,
            [trials[i] for i in chunk],
            training,
            init_state,
            on_epoch=None if on_epoch is None else lambda epoch, records: on_epoch(epoch, relabel(records)),
            on_trial_finished=None if on_trial_finished is None else lambda i, outcome: on_trial_finished(chunk[i], outcome),
        )
    except torch.OutOfMemoryError:
        if len(chunk) == 1:
            raise
        log.warning("out of memory with %d stacked trials; retrying as two batches of %d", len(chunk), len(chunk) // 2)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(chunk) // 2
        return [
            *_train_halving_on_oom(architecture, shared, trials, chunk[:half], training, init_state, on_epoch, on_trial_finished),
            *_train_halving_on_oom(architecture, shared, trials, chunk[half:], training, init_state, on_epoch, on_trial_finished),
        ]


def _train_one(
    architecture: ArchitectureSpec,
    shared: SharedData,
    trial: TrialInputs,
    training: TrainingSpec,
    init_state: dict[str, torch.Tensor] | None,
    index: int,
    on_epoch: BatchEpochCallback | None,
    on_trial_finished: TrialFinishedCallback | None,
) -> TrialOutcome:
    model = build_model(architecture, seed=trial.seed, device=shared.x_train.device)
    if init_state is not None:
        model.load_state_dict(init_state)
    data = DeviceData(
        shared.x_train if trial.x_train is None else trial.x_train,
        trial.y_train,
        shared.x_test if trial.x_test is None else trial.x_test,
        shared.y_test,
    )

    def epoch_done(record: EpochRecord) -> None:
        if on_epoch is not None:
            on_epoch(record.epoch, {index: record})

    outcome = train_trial(model, data, training, trial.seed, on_epoch=epoch_done)
    if on_trial_finished is not None:
        on_trial_finished(index, outcome)
    return outcome
