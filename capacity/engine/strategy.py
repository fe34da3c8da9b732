"""Choosing how to train a set of trials, and running them in memory-sized batches.

Three strategies compute the same thing: `vmap` steps K stacked trials with one vmapped call and
`grouped` steps them as one folded network with groups=K convolutions (batched.py, grouped.py;
`grouped-compiled` is the same under torch.compile);
`sequential` trains one module at a time (trainer.py). Which is faster depends on the device and on
how much work one step of one trial is (bench/engine_throughput.py measures it; bench/RESULTS.md
has the numbers): on a GPU stacking wins by an order of magnitude; on a CPU it wins only while a
step is small enough that Python overhead dominates. On the CPU the choice is a pure function of
architecture and trial count, so an audit gives the same report every time; on an accelerator the stacking
strategies are timed for a few steps on the real shapes and the faster one is kept (per
architecture, device, trial count and batch size, for the life of the process).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch

from effcap.capacity.engine.batched import BatchEpochCallback, SharedData, Stacking, TrialFinishedCallback, TrialInputs, time_steps, train_batched
from effcap.capacity.engine.grouped import folds
from effcap.capacity.engine.trainer import DeviceData, EpochRecord, TrialOutcome, channels_last, predicted_labels, train_trial
from effcap.capacity.models import ArchitectureSpec, build_model
from effcap.capacity.models.flops import layer_multiply_adds
from effcap.capacity.specs import TrainingSpec

log = logging.getLogger("effcap.capacity.engine")

Strategy = Literal["vmap", "grouped", "grouped-compiled", "sequential"]
# Mean per-example multiply-adds per Linear/Conv layer up to which stacking trials (folded) beats
# one at a time on a CPU. What stacking saves is per-operation overhead, so the work per layer, not
# per network, decides (bench/RESULTS.md, "CPU strategy rule"): stacked wins 1.2-1.9x for a narrow
# ResNet (5.4k per layer), a narrow AlexNet (8k) and an MLP 64-128-10 (4.7k); one at a time wins
# for an MLP 64-512-10 (19k), a 16-32 channel CNN on 8x8 (28k) and an MLP 64-512-512-10 (100k).
CPU_STACK_MAX_MULTIPLY_ADDS_PER_LAYER = 16_384


@dataclass(frozen=True)
class EngineOptions:
    # None: choose by architecture and device (choose_strategy).
    strategy: Strategy | None = None
    # Largest number of trials stacked in one batch; OOM halves it.
    max_trials_per_batch: int = 64
    # False: a full pass over the train split after every epoch, as before fit_check.py screened them
    # (same steps to fit; the tests and bench/fit_screen.py compare the two).
    screen_fit_check: bool = True


# Steps timed per candidate when an accelerator's strategy is measured (after one warm-up step).
PROBE_STEPS = 5
_measured: dict[tuple[str, str, int, int, bool], Strategy] = {}


def choose_strategy(architecture: ArchitectureSpec, device: torch.device, trials: int) -> Strategy:
    """The CPU rule for `trials` stacked trials, or on an accelerator the default before measuring: vmap.

    On the CPU small networks stack, folded into one grouped network where the family folds (1.2-1.6x vmap
    there, bench/RESULTS.md), vmapped where it does not. One trial alone has nothing to stack with: the
    plain module is faster than a stack of one (bench/RESULTS.md, "Stacks of one"), and memorisation's
    default of one seed makes every subset size such a batch.
    """
    if device.type != "cpu":
        return "vmap"
    if trials == 1:
        return "sequential"
    layers = layer_multiply_adds(build_model(architecture, device="meta"), architecture.input_shape)
    if sum(layers.values()) / len(layers) > CPU_STACK_MAX_MULTIPLY_ADDS_PER_LAYER:
        return "sequential"
    return "grouped" if folds(architecture) else "vmap"


# What the accelerator probe times, for a family that folds. torch.compile is left out (its compile time
# would dominate a short probe); ask for `grouped-compiled` explicitly, as the benchmark does.
STACKING_CANDIDATES: tuple[Strategy, ...] = ("vmap", "grouped")


def stacking_candidates(architecture: ArchitectureSpec) -> tuple[Strategy, ...]:
    """The stacking strategies `architecture` can run under: grouped only where it folds."""
    return STACKING_CANDIDATES if folds(architecture) else ("vmap",)


def measure_strategy(architecture: ArchitectureSpec, shared: SharedData, trials: list[TrialInputs], training: TrainingSpec) -> tuple[Strategy, dict[str, float]]:
    """The faster stacking strategy for these shapes, timed over PROBE_STEPS steps of each candidate.

    The probe trains throwaway copies on the real inputs and batch size; the audit's trials then
    start from scratch, so the measurement never changes their numbers, only their speed.
    """
    seconds = {
        candidate: time_steps(architecture, shared, trials, training, PROBE_STEPS, stacking=candidate)
        for candidate in stacking_candidates(architecture)
    }
    return min(seconds, key=seconds.__getitem__), seconds


def _strategy_for(architecture: ArchitectureSpec, shared: SharedData, trials: list[TrialInputs], training: TrainingSpec, size: int) -> Strategy:
    device = shared.x_train.device
    if device.type == "cpu":
        return choose_strategy(architecture, device, min(size, len(trials)))
    candidates = stacking_candidates(architecture)
    if len(candidates) == 1:  # nothing to choose between: no probe
        return candidates[0]
    own_inputs = any(t.x_train is not None for t in trials)
    key = (architecture.model_dump_json(), str(device), min(size, len(trials)), training.batch_size, own_inputs)
    if key not in _measured:
        _measured[key] = _measure_within_memory(architecture, shared, trials[:size], training)
    return _measured[key]


def _measure_within_memory(architecture: ArchitectureSpec, shared: SharedData, trials: list[TrialInputs], training: TrainingSpec) -> Strategy:
    """Time the candidates on as many of the trials as fit (halving, like training); vmap if none fits."""
    while trials:
        try:
            best, seconds = measure_strategy(architecture, shared, trials, training)
            log.info("measured %s on %d trials: %s -> %s", architecture.family, len(trials), {k: f"{v:.4f}s" for k, v in seconds.items()}, best)
            return best
        except torch.OutOfMemoryError:
            log.warning("out of memory timing strategies on %d stacked trials; timing %d", len(trials), len(trials) // 2)
        if torch.cuda.is_available():  # after the handler, whose traceback held the probe's tensors
            torch.cuda.empty_cache()
        trials = trials[: len(trials) // 2]
    return "vmap"


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
    size = options.max_trials_per_batch
    strategy = options.strategy or _strategy_for(architecture, shared, trials, training, size)
    outcomes: list[TrialOutcome] = []
    if strategy == "sequential":
        for index, trial in enumerate(trials):
            outcome = _train_one(
                architecture, shared, trial, training, init_state, index, on_epoch, on_trial_finished,
                options.screen_fit_check,
            )
            outcomes.append(outcome)
        return outcomes, strategy
    for start in range(0, len(trials), size):
        chunk = list(range(start, min(start + size, len(trials))))
        outcomes.extend(
            _train_halving_on_oom(
                architecture, shared, trials, chunk, training, init_state, strategy, on_epoch, on_trial_finished,
                options.screen_fit_check,
            )
        )
    return outcomes, strategy


def _train_halving_on_oom(
    architecture: ArchitectureSpec,
    shared: SharedData,
    trials: list[TrialInputs],
    chunk: list[int],
    training: TrainingSpec,
    init_state: dict[str, torch.Tensor] | None,
    stacking: Stacking,
    on_epoch: BatchEpochCallback | None,
    on_trial_finished: TrialFinishedCallback | None,
    screen_fit_check: bool = True,
) -> list[TrialOutcome]:
    """Train the trials at `chunk`; out of memory, retry as two halves (never fail the audit for it).

    Trials that finished before memory ran out keep their outcomes: only the others are retrained,
    so no trial is reported finished twice.
    """
    finished: dict[int, TrialOutcome] = {}

    def record(row: int, outcome: TrialOutcome) -> None:
        finished[chunk[row]] = outcome
        if on_trial_finished is not None:
            on_trial_finished(chunk[row], outcome)

    try:
        return train_batched(
            architecture,
            shared,
            [trials[i] for i in chunk],
            training,
            init_state,
            on_epoch=None if on_epoch is None else lambda epoch, records: on_epoch(epoch, {chunk[row]: r for row, r in records.items()}),
            on_trial_finished=record,
            stacking=stacking,
            screen_fit_check=screen_fit_check,
        )
    except torch.OutOfMemoryError:
        if len(chunk) == 1:
            raise
        remaining = [i for i in chunk if i not in finished]
        log.warning("out of memory with %d stacked trials; retrying the %d unfinished as two batches", len(chunk), len(remaining))
    if torch.cuda.is_available():  # after the handler, whose traceback held the stack's tensors
        torch.cuda.empty_cache()
    half = max(1, len(remaining) // 2)
    for part in (remaining[:half], remaining[half:]):
        if part:
            retrained = _train_halving_on_oom(
                architecture, shared, trials, part, training, init_state, stacking, on_epoch, on_trial_finished,
                screen_fit_check,
            )
            finished.update(zip(part, retrained))
    return [finished[i] for i in chunk]


def _train_one(
    architecture: ArchitectureSpec,
    shared: SharedData,
    trial: TrialInputs,
    training: TrainingSpec,
    init_state: dict[str, torch.Tensor] | None,
    index: int,
    on_epoch: BatchEpochCallback | None,
    on_trial_finished: TrialFinishedCallback | None,
    screen_fit_check: bool,
) -> TrialOutcome:
    model = build_model(architecture, seed=trial.seed, device=shared.x_train.device)
    if init_state is not None:
        model.load_state_dict(init_state)
    model = channels_last(model)
    x_train = shared.x_train if trial.x_train is None else trial.x_train
    x_test = shared.x_test if trial.x_test is None else trial.x_test
    # A subset trial trains on rows[order]: the examples, in the order, the stacked engine gives it.
    subset = slice(None) if trial.rows is None else trial.rows
    data = DeviceData(x_train[subset], trial.y_train[subset], x_test, shared.y_test)

    def epoch_done(record: EpochRecord) -> None:
        if on_epoch is not None:
            on_epoch(record.epoch, {index: record})

    outcome = train_trial(model, data, training, trial.seed, on_epoch=epoch_done, screen_fit_check=screen_fit_check)
    if trial.record_predictions:
        outcome.train_predictions, outcome.test_predictions = predicted_labels(model, x_train), predicted_labels(model, x_test)
    if on_trial_finished is not None:
        on_trial_finished(index, outcome)
    return outcome
