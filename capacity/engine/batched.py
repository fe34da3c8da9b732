"""K trials of one architecture trained at once: parameters stacked on a trial axis (torch.func).

Each trial keeps its own initialisation, labels, inputs (for pixel conditions), data order, SGD
momentum and BatchNorm statistics; one gradient call steps all of them, either vmapped over one
trial's forward pass (`vmap`) or through the K trials folded into one grouped network (`grouped`,
grouped.py; `grouped-compiled` runs that step through torch.compile). A trial that fits
is evaluated on the test split and removed from the stack, so it stops costing compute. The data
stay on the device; the only host synchronisation is one per epoch, to read the running accuracies
that decide which trials need the full pass that decides which fitted (fit_check.py).
The arithmetic is that of `trainer.train_trial` (same batches, same SGD), trial for trial.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch.func import functional_call, grad, stack_module_state, vmap
from torch.nn import functional as F

from effcap.capacity.engine.device import synchronize
from effcap.capacity.engine.fit_check import FitScreen, trains_at_random
from effcap.capacity.engine.grouped import grouped_forward
from effcap.capacity.engine.trainer import EVAL_BATCH, EpochRecord, TrialOutcome
from effcap.capacity.models import ArchitectureSpec, build_model
from effcap.capacity.seeding import data_order_seed
from effcap.capacity.specs import TrainingSpec


@dataclass(frozen=True)
class TrialInputs:
    """One trial of a batch: its seed, the labels it trains on, and its own inputs if it has them."""

    seed: int
    y_train: torch.Tensor
    # None: the trial uses the batch's shared inputs (label conditions); set for pixel conditions.
    x_train: torch.Tensor | None = None
    x_test: torch.Tensor | None = None
    # Indices of the shared train examples this trial trains on (one subset per trial, as the
    # memorisation scores train); None: all of them. Stacked trials hold subsets of one size.
    rows: torch.Tensor | None = None
    # Keep the trained network's predicted labels on the whole shared train split and the test split.
    record_predictions: bool = False


@dataclass(frozen=True)
class SharedData:
    x_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass(frozen=True)
class _Stack:
    """The functional state of the active trials, every tensor with the trial axis first."""

    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    momentum: dict[str, torch.Tensor]
    y_train: torch.Tensor
    # (K, n, ...) when trials have their own inputs, else None (use the shared ones).
    x_train: torch.Tensor | None
    x_test: torch.Tensor | None
    # (K, m) indices into the shared train examples when trials train on subsets, else None.
    rows: torch.Tensor | None = None

    def keep(self, rows: torch.Tensor) -> _Stack:
        pick = lambda d: {k: v[rows] for k, v in d.items()}  # noqa: E731
        own = lambda x: None if x is None else x[rows]  # noqa: E731
        kept = (pick(self.params), pick(self.buffers), pick(self.momentum), self.y_train[rows], own(self.x_train), own(self.x_test))
        return _Stack(*kept, own(self.rows))


# Per-trial gradients, and the batch's per-trial mean loss and count of correct predictions (K,) (the step's
# own forward pass: what the running accuracy of fit_check.py is made of).
StepResult = tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class _Compute:
    """How the stack computes: per-trial gradients for (K, B, ...) inputs and (K, B) labels, and
    logits (K, B, classes) for inputs shared by all trials (B, ...) or their own (K, B, ...)."""

    gradients: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor, torch.Tensor], StepResult]
    predict: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor, bool], torch.Tensor]


Stacking = Literal["vmap", "grouped", "grouped-compiled"]
BatchEpochCallback = Callable[[int, dict[int, EpochRecord]], None]
TrialFinishedCallback = Callable[[int, TrialOutcome], None]


def train_batched(
    architecture: ArchitectureSpec,
    shared: SharedData,
    trials: list[TrialInputs],
    training: TrainingSpec,
    init_state: dict[str, torch.Tensor] | None = None,
    on_epoch: BatchEpochCallback | None = None,
    on_trial_finished: TrialFinishedCallback | None = None,
    stacking: Stacking = "vmap",
    screen_fit_check: bool = True,
) -> list[TrialOutcome]:
    """Train every trial to the fit threshold or the budget; outcomes in the order of `trials`.

    `on_epoch(epoch, {trial index: record})` follows the active trials; `on_trial_finished(index,
    outcome)` is called as each trial ends (fitted, or out of budget). `stacking` says how the stack
    computes; `screen_fit_check` False evaluates every epoch in full (fit_check.py).
    """
    device = shared.x_train.device
    base = build_model(architecture, device="meta")
    stack = _initial_stack(architecture, shared, trials, init_state, device)
    compute = stack_compute(stacking, architecture, base, device)
    orders = [torch.Generator().manual_seed(data_order_seed(t.seed)) for t in trials]
    active = list(range(len(trials)))
    wants_predictions = [t.record_predictions for t in trials]
    outcomes = [TrialOutcome(0.0, 0.0, 0.0, False, 0, 0, 0.0, 0, 0.0) for _ in trials]
    screened = screen_fit_check and not trains_at_random(base)
    screens = [FitScreen(training.fit_threshold, training.max_epochs, enabled=screened) for _ in trials]
    n = stack.y_train.shape[1] if stack.rows is None else stack.rows.shape[1]
    learning_rate, step, started = training.learning_rate, 0, time.perf_counter()
    for epoch in range(1, training.max_epochs + 1):
        base.train()
        order = torch.stack([torch.randperm(n, generator=orders[i]) for i in active]).to(device)
        loss_sum = torch.zeros(len(active), device=device, dtype=torch.float64)
        correct = torch.zeros(len(active), device=device, dtype=torch.long)
        for start in range(0, n, training.batch_size):
            index = order[:, start : start + training.batch_size]
            if stack.rows is not None:  # positions in each trial's subset -> shared examples
                index = torch.gather(stack.rows, 1, index)
            x, y = _gather(shared.x_train, stack.x_train, index), torch.gather(stack.y_train, 1, index)
            grads, losses, hits = compute.gradients(stack.params, stack.buffers, x, y)
            _sgd_step(stack, grads, learning_rate, training)
            loss_sum += losses.double() * index.shape[1]
            correct += hits
            step += 1
        learning_rate *= training.lr_decay_per_epoch
        base.eval()
        running = (loss_sum / n).tolist(), (correct.double() / n).tolist()
        records = _epoch_records(compute, stack, shared, active, screens, epoch, step, *running)
        now = time.perf_counter() - started
        for i, record in records.items():
            if record.full_pass:
                outcomes[i].curve.append(record)
        if on_epoch is not None:
            on_epoch(epoch, records)
        reached = {i for i, r in records.items() if r.full_pass and r.train_accuracy >= training.fit_threshold}
        fitted = [row for row, i in enumerate(active) if i in reached]
        if fitted:
            for row in fitted:
                outcomes[active[row]].fitted = True
                outcomes[active[row]].steps_to_fit, outcomes[active[row]].epochs_to_fit = step, epoch
                outcomes[active[row]].seconds_to_fit = now
            stack, active = _finish(compute, stack, shared, active, fitted, outcomes, step, now, on_trial_finished, wants_predictions)
            if not active:
                break
    if active:
        seconds = time.perf_counter() - started
        _finish(compute, stack, shared, active, list(range(len(active))), outcomes, step, seconds, on_trial_finished, wants_predictions)
    return outcomes


def time_steps(architecture: ArchitectureSpec, shared: SharedData, trials: list[TrialInputs], training: TrainingSpec, steps: int, stacking: Stacking = "vmap") -> float:
    """Seconds for `steps` SGD steps of all `trials` stacked (after one untimed warm-up step).

    Throwaway copies are trained on random minibatches of the real inputs: only the time is kept.
    """
    device = shared.x_train.device
    stack = _initial_stack(architecture, shared, trials, None, device)
    compute = stack_compute(stacking, architecture, build_model(architecture, device="meta").train(), device)
    generator = torch.Generator().manual_seed(0)
    batch = min(training.batch_size, stack.y_train.shape[1])
    seconds = 0.0
    for step in range(steps + 1):
        index = torch.randint(0, stack.y_train.shape[1], (len(trials), batch), generator=generator).to(device)
        x, y = _gather(shared.x_train, stack.x_train, index), torch.gather(stack.y_train, 1, index)
        synchronize(device)
        started = time.perf_counter()
        _sgd_step(stack, compute.gradients(stack.params, stack.buffers, x, y)[0], training.learning_rate, training)
        synchronize(device)
        seconds += (time.perf_counter() - started) if step else 0.0
    return seconds


def _initial_stack(
    architecture: ArchitectureSpec, shared: SharedData, trials: list[TrialInputs], init_state: dict[str, torch.Tensor] | None, device: torch.device
) -> _Stack:
    models = [build_model(architecture, seed=t.seed, device=device) for t in trials]
    if init_state is not None:
        for model in models:
            model.load_state_dict(init_state)
    params, buffers = stack_module_state(models)
    params = {k: v.detach() for k, v in params.items()}
    own_inputs = any(t.x_train is not None for t in trials)
    x_train = torch.stack([shared.x_train if t.x_train is None else t.x_train for t in trials]) if own_inputs else None
    x_test = torch.stack([shared.x_test if t.x_test is None else t.x_test for t in trials]) if own_inputs else None
    momentum = {k: torch.zeros_like(v) for k, v in params.items()}
    return _Stack(params, buffers, momentum, torch.stack([t.y_train for t in trials]), x_train, x_test, _subset_rows(trials, own_inputs))


def _subset_rows(trials: list[TrialInputs], own_inputs: bool) -> torch.Tensor | None:
    """The trials' train subsets stacked (K, m), or None when every trial trains on every example."""
    if all(t.rows is None for t in trials):
        return None
    if own_inputs or any(t.rows is None for t in trials) or len({len(t.rows) for t in trials}) != 1:
        raise ValueError("stacked trials with train subsets need subsets of one size and the shared inputs")
    return torch.stack([t.rows for t in trials])


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """bf16 logits (autocast) cast up for the loss; float64 ones (the float64 exactness tests) left as they are,
    since rounding them to float32 made the two strategies' gradients differ in the last float32 bits."""
    return logits if logits.dtype == torch.float64 else logits.float()


def _vmap_compute(base: torch.nn.Module, device: torch.device) -> _Compute:
    """One trial's forward pass vmapped over the stack; bf16 autocast on CUDA, where it pays."""
    use_autocast = device.type == "cuda"

    def forward(params, buffers, x):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_autocast):
            return _at_least_float32(functional_call(base, (params, buffers), (x,)))

    def loss(params, buffers, x, y):
        logits = forward(params, buffers, x)
        loss = F.cross_entropy(logits, y)
        return loss, (loss.detach(), (logits.detach().argmax(dim=-1) == y).sum())

    def gradients(params, buffers, x, y):
        grads, (losses, correct) = vmap(grad(loss, has_aux=True), randomness="different")(params, buffers, x, y)
        return grads, losses, correct

    def predict(params, buffers, x, own_inputs):
        return vmap(forward, in_dims=(0, 0, 0 if own_inputs else None))(params, buffers, x)

    return _Compute(gradients, predict)


def stack_compute(stacking: Stacking, architecture: ArchitectureSpec, base: torch.nn.Module, device: torch.device) -> _Compute:
    if stacking == "vmap":
        return _vmap_compute(base, device)
    return _grouped_compute(architecture, device, compiled=stacking == "grouped-compiled")


def _grouped_compute(architecture: ArchitectureSpec, device: torch.device, compiled: bool) -> _Compute:
    """The K trials as one folded network (grouped.py): channels-last on every device (on two CPU
    cores too a folded step of a narrow ResNet and a narrow AlexNet is 1.47x and 1.44x faster than
    NCHW, bench/RESULTS.md "Convolution layout"), bf16 autocast on CUDA.

    `compiled` hands the loss (forward and, through AOTAutograd, backward) to torch.compile, which
    fuses the elementwise work between convolutions. Shapes are static: each stack size and the
    short last batch compile once (torch 2.13's dynamic-shape path failed in Inductor on the folded
    convolutions), and past torch's recompile limit a new shape runs eagerly.
    """
    on_cuda = device.type == "cuda"
    folded = grouped_forward(architecture, channels_last=True)

    def forward(params, buffers, x, training, shared):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=on_cuda):
            return _at_least_float32(folded(params, buffers, x, training, shared))

    def trial_losses(params, buffers, x, y):
        """Each trial's mean loss (K,), and its logits for the running accuracy."""
        logits = forward(params, buffers, x, True, False)
        return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=1), logits

    loss = torch.compile(trial_losses, dynamic=False) if compiled else trial_losses

    def gradients(params, buffers, x, y):
        leaves = {name: p.detach().requires_grad_() for name, p in params.items()}
        with torch.enable_grad():
            losses, logits = loss(leaves, buffers, x, y)
            # Trials share no parameter, so the gradient of the summed per-trial losses is each trial's own.
            grads = dict(zip(leaves, torch.autograd.grad(losses.sum(), list(leaves.values()))))
        return grads, losses.detach(), (logits.detach().argmax(dim=2) == y).sum(dim=1)

    def predict(params, buffers, x, own_inputs):
        return forward(params, buffers, x, False, not own_inputs)

    return _Compute(gradients, predict)


def _gather(shared_x: torch.Tensor, own_x: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor:
    """Inputs (K, B, ...) for per-trial example indices (K, B)."""
    if own_x is None:
        return shared_x[index]
    return own_x[torch.arange(len(index), device=index.device)[:, None], index]


@torch.no_grad()
def _sgd_step(stack: _Stack, grads: dict[str, torch.Tensor], learning_rate: float, training: TrainingSpec) -> None:
    """torch.optim.SGD's update (momentum, no dampening, weight decay added to the gradient), per trial.

    Multi-tensor (foreach) kernels, as torch.optim uses on accelerators: a handful of launches per
    step instead of three per parameter tensor, which is what a small network's step is made of.
    """
    names = list(stack.params)
    params, momentum = [stack.params[n] for n in names], [stack.momentum[n] for n in names]
    g = [grads[n] for n in names]
    if training.weight_decay:
        g = torch._foreach_add(g, params, alpha=training.weight_decay)
    torch._foreach_mul_(momentum, training.momentum)
    torch._foreach_add_(momentum, g)
    torch._foreach_add_(params, momentum, alpha=-learning_rate)


@torch.no_grad()
def _evaluate(
    compute: _Compute, stack: _Stack, shared_x: torch.Tensor, own_x: torch.Tensor | None, y: torch.Tensor, rows: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-trial mean cross-entropy and accuracy over all examples (each trial's subset `rows` when
    given), as (K,) float64 device tensors.

    Correct answers are counted exactly and divided in float64, as the one-at-a-time trainer does:
    in float32, 19/20 is 0.9499999881 and a trial would miss a 0.95 fit threshold it reached.
    """
    k, n = y.shape[0], y.shape[1] if rows is None else rows.shape[1]
    loss_sum = torch.zeros(k, device=y.device)
    correct = torch.zeros(k, device=y.device, dtype=torch.long)
    for start in range(0, n, EVAL_BATCH):
        if rows is not None:  # each trial's own examples, gathered from the shared inputs
            chunk = rows[:, start : start + EVAL_BATCH]
            logits = compute.predict(stack.params, stack.buffers, shared_x[chunk], True)
            target = torch.gather(y, 1, chunk)
        else:
            x = shared_x[start : start + EVAL_BATCH] if own_x is None else own_x[:, start : start + EVAL_BATCH]
            logits = compute.predict(stack.params, stack.buffers, x, own_x is not None)
            target = y[:, start : start + EVAL_BATCH]
        loss_sum += F.cross_entropy(logits.transpose(1, 2), target, reduction="none").sum(dim=1)
        correct += (logits.argmax(dim=2) == target).sum(dim=1)
    return loss_sum.double() / n, correct.double() / n


@torch.no_grad()
def _predicted_labels(compute: _Compute, stack: _Stack, shared_x: torch.Tensor, own_x: torch.Tensor | None) -> torch.Tensor:
    """Each trial's predicted class for every example, (K, n) on the device."""
    n = len(shared_x) if own_x is None else own_x.shape[1]
    parts = []
    for start in range(0, n, EVAL_BATCH):
        x = shared_x[start : start + EVAL_BATCH] if own_x is None else own_x[:, start : start + EVAL_BATCH]
        parts.append(compute.predict(stack.params, stack.buffers, x, own_x is not None).argmax(dim=2))
    return torch.cat(parts, dim=1)


def _predictions(compute: _Compute, finished: _Stack, shared: SharedData, wanted: list[bool]) -> list[tuple[list[int], list[int]] | None]:
    """(train, test) predicted labels of each finished trial that asked for them, else None."""
    if not any(wanted):
        return [None] * len(wanted)
    train = _predicted_labels(compute, finished, shared.x_train, finished.x_train).tolist()
    test = _predicted_labels(compute, finished, shared.x_test, finished.x_test).tolist()
    return [(a, b) if want else None for want, a, b in zip(wanted, train, test)]


def _epoch_records(
    compute: _Compute,
    stack: _Stack,
    shared: SharedData,
    active: list[int],
    screens: list[FitScreen],
    epoch: int,
    step: int,
    running_losses: list[float],
    running_accuracies: list[float],
) -> dict[int, EpochRecord]:
    """Each active trial's record of `epoch`: a full pass over the train split for the trials whose screen
    asks for one (evaluated together; the others sit the pass out), the epoch's running means for the rest."""
    records = {
        i: EpochRecord(step, epoch, running_losses[row], running_accuracies[row], full_pass=False)
        for row, i in enumerate(active)
    }
    due = [row for row, i in enumerate(active) if screens[i].full_pass_due(epoch, running_accuracies[row])]
    if not due:
        return records
    evaluated = stack if len(due) == len(active) else stack.keep(torch.tensor(due, device=stack.y_train.device))
    x_train, y_train, rows = evaluated.x_train, evaluated.y_train, evaluated.rows
    losses, accuracies = _evaluate(compute, evaluated, shared.x_train, x_train, y_train, rows)
    for row, loss, accuracy in zip(due, losses.tolist(), accuracies.tolist()):
        screens[active[row]].observe(epoch, running_accuracies[row], accuracy)
        records[active[row]] = EpochRecord(step, epoch, loss, accuracy)
    return records


def _finish(
    compute: _Compute,
    stack: _Stack,
    shared: SharedData,
    active: list[int],
    rows: list[int],
    outcomes: list[TrialOutcome],
    step: int,
    seconds: float,
    on_trial_finished: TrialFinishedCallback | None,
    record_predictions: list[bool],
) -> tuple[_Stack, list[int]]:
    """Record final numbers of the trials at `rows` (test accuracy now) and drop them from the stack."""
    done = torch.tensor(rows, device=stack.y_train.device)
    finished = stack.keep(done)
    test_y = shared.y_test.expand(len(rows), -1)
    _, test_accuracy = _evaluate(compute, finished, shared.x_test, finished.x_test, test_y)
    predictions = _predictions(compute, finished, shared, [record_predictions[active[row]] for row in rows])
    for row, accuracy, predicted in zip(rows, test_accuracy.tolist(), predictions):
        outcome = outcomes[active[row]]
        if predicted is not None:
            outcome.train_predictions, outcome.test_predictions = predicted
        last = outcome.curve[-1]
        outcome.train_loss, outcome.train_accuracy, outcome.test_accuracy = last.train_loss, last.train_accuracy, accuracy
        outcome.steps_run, outcome.seconds_run = step, seconds
        if on_trial_finished is not None:
            on_trial_finished(active[row], outcome)
    keep = [row for row in range(len(active)) if row not in set(rows)]
    if not keep:
        return stack, []
    return stack.keep(torch.tensor(keep, device=stack.y_train.device)), [active[row] for row in keep]
