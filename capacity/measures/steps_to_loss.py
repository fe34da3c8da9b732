"""Jiang et al. (2020)'s optimisation measure: SGD steps from initialisation to a training cross-entropy of 0.1.

A network that fits its training data in fewer steps sits, by this measure, in an easier region of the loss
landscape; Jiang et al. (appendix C, the number of steps to reach cross-entropy 0.1) found it among the better
predictors of the generalisation gap. The loop is the training engine's (trainer.train_trial): the same SGD and
decay (trainer.sgd), the same data order for the same seed; it stops at the first step after which the full
training cross-entropy, evaluated in eval mode, is at most the threshold, instead of at a fitted accuracy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.engine.trainer import evaluate, sgd
from effcap.capacity.seeding import data_order_seed
from effcap.capacity.specs import TrainingSpec

CROSS_ENTROPY_THRESHOLD = 0.1


def constant_rate(training: TrainingSpec) -> TrainingSpec:
    """The spec's training without its per-epoch decay, as Jiang et al. train: a decaying rate spends most of a
    long budget near zero (0.95 per epoch leaves 0.6% after 100 epochs), and the count would measure the schedule."""
    return training.model_copy(update={"lr_decay_per_epoch": 1.0})


@dataclass(frozen=True)
class StepsToLoss:
    threshold: float
    # SGD steps until the training cross-entropy was ≤ threshold; None when the budget ran out first.
    steps: int | None
    steps_run: int
    max_epochs: int


def steps_to_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    training: TrainingSpec,
    seed: int,
    threshold: float = CROSS_ENTROPY_THRESHOLD,
) -> StepsToLoss:
    """Train `model` in place from its current weights; count the steps to a cross-entropy ≤ threshold on (x, y).

    The full loss is evaluated once per epoch; the first epoch that ends at or below the threshold is then
    replayed from its saved start (same batches, SGD state and RNG state: the same arithmetic) with an evaluation
    after every step. That costs one evaluation per epoch plus one per step of a single epoch, and equals the
    every-step count unless the loss dips below the threshold and back above it within an earlier epoch.
    """
    if evaluate(model, x, y)[0] <= threshold:
        return StepsToLoss(threshold, 0, 0, training.max_epochs)
    order_rng = torch.Generator().manual_seed(data_order_seed(seed))
    optimizer, schedule = sgd(model, training)
    step = 0
    for _ in range(training.max_epochs):
        order = torch.randperm(len(x), generator=order_rng).to(x.device)
        saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
        # Dropout masks come from the global generators.
        rng = torch.get_rng_state(), torch.cuda.get_rng_state(x.device) if x.is_cuda else None
        _epoch(model, optimizer, x, y, order, training.batch_size)
        if evaluate(model, x, y)[0] <= threshold:
            model.load_state_dict(saved[0])
            optimizer.load_state_dict(saved[1])
            torch.set_rng_state(rng[0])
            if rng[1] is not None:
                torch.cuda.set_rng_state(rng[1], x.device)
            crossed = _epoch(model, optimizer, x, y, order, training.batch_size, stop_at=threshold)
            return StepsToLoss(threshold, step + crossed, step + crossed, training.max_epochs)
        step += -(-len(x) // training.batch_size)
        schedule.step()
    return StepsToLoss(threshold, None, step, training.max_epochs)


def _epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    stop_at: float | None = None,
) -> int:
    """One epoch of SGD in `order`; with `stop_at`, stop after the first step whose full loss is ≤ it. Steps run."""
    step = 0
    for start in range(0, len(x), batch_size):
        batch = order[start : start + batch_size]
        model.train()
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if stop_at is not None and evaluate(model, x, y)[0] <= stop_at:
            break
    return step


def steps_to_loss_examples(examples: int, training: TrainingSpec) -> int:
    """Examples trained on at most (the whole budget, and the replayed epoch), for the server's admission check;
    the forward-only evaluations are not counted."""
    return (training.max_epochs + 1) * examples
