"""Choosing the randomization test's learning rate when the spec sets none: a short probe on true labels.

One rate does not suit every architecture and dataset: 0.01 leaves an MLP on digits far from fitting
random labels in thousands of steps, while 0.1 can diverge for a deep network without normalisation.
So each candidate trains the same initialisation (one derived seed) on the true labels for about
PROBE_STEPS SGD steps at a constant rate. The rate that fits the true labels in the fewest steps wins;
if none fits, the one whose train loss ends lowest (the larger rate on a tie; a diverged run's loss is
infinite). Deterministic for an audit seed, and cheap: the
candidates' steps are counted in the audit's cost (capacity/cost.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from effcap.capacity.analyses.trial_batch import TrialPlan, run_trials
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.trainer import steps_per_epoch
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import Condition, ConditionKind, TrainingSpec

CANDIDATE_RATES = (0.1, 0.03, 0.01)
PROBE_STEPS = 100


@dataclass(frozen=True)
class ProbeResult:
    learning_rate: float
    # Train loss on true labels after the probe, per candidate rate (inf when it diverged).
    final_losses: dict[float, float]
    steps: int

    def describe(self) -> str:
        losses = ", ".join(f"{rate:g}: {loss:.3g}" for rate, loss in self.final_losses.items())
        return f"learning rate {self.learning_rate:g} chosen by a {self.steps}-step probe on true labels (train loss {losses})"


def probe_epochs(train_examples: int, batch_size: int) -> int:
    """Whole epochs covering at least PROBE_STEPS steps (the trainer evaluates once per epoch)."""
    return math.ceil(PROBE_STEPS / steps_per_epoch(train_examples, batch_size))


def probe_learning_rate(
    architecture,
    dataset: Dataset,
    training: TrainingSpec,
    audit_seed: int,
    device: torch.device,
    init_state: dict[str, torch.Tensor] | None = None,
) -> ProbeResult:
    """Train each candidate rate from one initialisation on true labels; return the one with the lowest loss."""
    epochs = probe_epochs(len(dataset.x_train), training.batch_size)
    plan = TrialPlan(Condition(kind=ConditionKind.TRUE_LABELS), 0, derive_seed(audit_seed, "learning_rate_probe"))
    losses: dict[float, float] = {}
    ranks: dict[float, tuple[float, float, float]] = {}
    steps = 0
    for rate in CANDIDATE_RATES:
        probe = training.model_copy(update={"learning_rate": rate, "lr_decay_per_epoch": 1.0, "max_epochs": epochs})
        (result,), _ = run_trials(architecture, dataset, [plan], probe, device, init_state)
        loss = result.outcome.train_loss
        losses[rate] = loss if math.isfinite(loss) else math.inf
        fit_steps = result.outcome.steps_to_fit if result.outcome.fitted else math.inf
        ranks[rate] = (fit_steps, losses[rate], -rate)
        steps = max(steps, result.outcome.steps_run)
    best = min(CANDIDATE_RATES, key=ranks.__getitem__)
    return ProbeResult(best, losses, steps)
