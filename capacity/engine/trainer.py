"""One trial's life: initialise, train with SGD until fitted or out of budget, evaluate, record.

The whole dataset sits on the device as tensors: batches are index gathers, not a DataLoader, and
the only host synchronisation is the once-per-epoch look at the running accuracy that decides whether
the full evaluation, which decides whether the trial fitted, is worth its pass (fit_check.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.engine.fit_check import FitScreen, trains_at_random
from effcap.capacity.seeding import data_order_seed
from effcap.capacity.specs import TrainingSpec

EVAL_BATCH = 1024


@dataclass(frozen=True)
class DeviceData:
    """A trial's data on the compute device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass(frozen=True)
class EpochRecord:
    """A trial's train loss and accuracy after an epoch: from a full pass over the train split, or
    (`full_pass` False, never in a curve) the epoch's running means, each batch seen before its step."""

    step: int
    epoch: int
    train_loss: float
    train_accuracy: float
    full_pass: bool = True


@dataclass
class TrialOutcome:
    train_accuracy: float
    test_accuracy: float
    train_loss: float
    fitted: bool
    steps_to_fit: int
    epochs_to_fit: int
    seconds_to_fit: float
    steps_run: int
    seconds_run: float
    # The epochs evaluated in full (fit_check.py says which), ending with the last one run.
    curve: list[EpochRecord] = field(default_factory=list)
    # Predicted labels of the trained network on the whole train and test splits, when the trial asked
    # for them (TrialInputs.record_predictions; the memorisation scores); else None.
    train_predictions: list[int] | None = None
    test_predictions: list[int] | None = None


EpochCallback = Callable[[EpochRecord], None]


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over all of (x, y), in chunks to bound memory."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(x), EVAL_BATCH):
        logits = model(x[start : start + EVAL_BATCH])
        target = y[start : start + EVAL_BATCH]
        loss_sum += F.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(dim=1) == target).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return loss_sum.item() / n, correct.item() / n


@torch.no_grad()
def predicted_labels(model: nn.Module, x: torch.Tensor) -> list[int]:
    """The model's predicted class for every row of x (eval mode, in chunks)."""
    was_training = model.training
    model.eval()
    labels = torch.cat([model(x[start : start + EVAL_BATCH]).argmax(dim=1) for start in range(0, len(x), EVAL_BATCH)])
    model.train(was_training)
    return labels.tolist()


def channels_last(model: nn.Module) -> nn.Module:
    """The model with its convolution weights channels-last (a no-op for models without any).

    Convolutions then run in NHWC whatever the input's layout: 1.11-1.34x faster training steps for
    every conv family on two CPU cores (bench/RESULTS.md, "Convolution layout"), and the layout tensor
    cores want on a GPU.
    """
    return model.to(memory_format=torch.channels_last)


def sgd(model: nn.Module, training: TrainingSpec) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.ExponentialLR]:
    """The spec's SGD and its per-epoch decay: one construction for every loop that trains like a trial."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=training.learning_rate, momentum=training.momentum, weight_decay=training.weight_decay
    )
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=training.lr_decay_per_epoch)


def train_trial(
    model: nn.Module,
    data: DeviceData,
    training: TrainingSpec,
    seed: int,
    on_epoch: EpochCallback | None = None,
    screen_fit_check: bool = True,
) -> TrialOutcome:
    """Train `model` in place on (x_train, y_train); stop at the first epoch that fits.

    Data order comes from a CPU generator seeded from `seed` (its own stream), so the same seed gives the
    same batches on any device. `screen_fit_check` False evaluates every epoch in full (fit_check.py).
    """
    order_rng = torch.Generator().manual_seed(data_order_seed(seed))
    optimizer, schedule = sgd(model, training)
    n = len(data.x_train)
    step = 0
    started = time.perf_counter()
    outcome = TrialOutcome(0.0, 0.0, 0.0, False, 0, 0, 0.0, 0, 0.0)
    screened = screen_fit_check and not trains_at_random(model)
    screen = FitScreen(training.fit_threshold, training.max_epochs, enabled=screened)
    model.train()
    for epoch in range(1, training.max_epochs + 1):
        order = torch.randperm(n, generator=order_rng).to(data.x_train.device)
        loss_sum = torch.zeros((), device=data.x_train.device)
        correct = torch.zeros((), device=data.x_train.device, dtype=torch.long)
        for start in range(0, n, training.batch_size):
            batch = order[start : start + training.batch_size]
            logits = model(data.x_train[batch])
            loss = F.cross_entropy(logits, data.y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.detach() * len(batch)
            correct += (logits.detach().argmax(dim=1) == data.y_train[batch]).sum()
        schedule.step()
        running_accuracy = correct.item() / n
        if screen.full_pass_due(epoch, running_accuracy):
            record = EpochRecord(step, epoch, *evaluate(model, data.x_train, data.y_train))
            screen.observe(epoch, running_accuracy, record.train_accuracy)
            outcome.curve.append(record)
        else:
            record = EpochRecord(step, epoch, loss_sum.item() / n, running_accuracy, full_pass=False)
        if on_epoch is not None:
            on_epoch(record)
        if record.full_pass and record.train_accuracy >= training.fit_threshold:
            outcome.fitted = True
            outcome.steps_to_fit, outcome.epochs_to_fit = step, epoch
            outcome.seconds_to_fit = time.perf_counter() - started
            break
    outcome.steps_run, outcome.seconds_run = step, time.perf_counter() - started
    last = outcome.curve[-1]
    outcome.train_loss, outcome.train_accuracy = last.train_loss, last.train_accuracy
    _, outcome.test_accuracy = evaluate(model, data.x_test, data.y_test)
    return outcome
