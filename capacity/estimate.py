"""What an audit will cost before it runs: trials, SGD steps and a wall-time estimate per analysis.

The counts are the budget (every trial running to its last epoch), the same upper bound the server
admits audits by (cost.py). Early stopping makes real audits cheaper, often several times (random
digits labels fit in a fifth of the standard budget), so a second, expected time assumes each trial
stops when a typical network fits: true labels in EXPECTED_EPOCHS_TRUE epochs, anything harder in
EXPECTED_EPOCHS_HARD (Zhang et al. fit random CIFAR labels in well under 100 epochs; an MLP fits
random digits labels in about 100, true ones in about 25, bench/RESULTS.md), never past the budget.
It is a prior, not a prediction for a given network: bench/dry_run_estimate.py measures how far off
it is. Seconds come from the device's
calibration (calibration.py): each SGD step costs the device's per-step overhead plus its time per
multiply-add times the step's work (batch x the network's per-example multiply-adds). Not counted:
the forward-only work of compressibility sweeps beyond one pass per point, sharpness and the NTK.
"""

from __future__ import annotations

from dataclasses import dataclass

from effcap.capacity.analyses.learning_rate_probe import CANDIDATE_RATES, probe_epochs
from effcap.capacity.analyses.memorization import budget_steps, size_grid
from effcap.capacity.analyses.memorization_scores import subset_size
from effcap.capacity.calibration import Calibration
from effcap.capacity.cost import training_examples
from effcap.capacity.engine.trainer import steps_per_epoch
from effcap.capacity.measures.flatness import sharpness_examples
from effcap.capacity.presets import apply_preset, needs_learning_rate_probe
from effcap.capacity.specs import AuditSpec, ConditionKind


@dataclass(frozen=True)
class AnalysisEstimate:
    analysis: str
    trials: int
    # SGD steps summed over trials, at most (the budget).
    sgd_steps: int
    # Training examples processed, at most: the unit of the server's admission check.
    training_examples: int
    # Wall time of the budget (at most), and if trials stop when a typical network fits (expected).
    seconds: float
    expected_seconds: float


@dataclass(frozen=True)
class _Work:
    trials: int
    steps: int
    batch_size: int
    # Steps if trials stop at the typical epoch to fit (the module docstring); `steps` when nothing stops early.
    expected_steps: int | None = None


# Epochs in which a typical network fits true labels, and harder conditions (corrupted or random labels,
# transformed inputs, random signs): the prior of the expected time.
EXPECTED_EPOCHS_TRUE = 25
EXPECTED_EPOCHS_HARD = 100


def estimate_audit(
    spec: AuditSpec, train_examples: int, test_examples: int, multiply_adds: int, calibration: Calibration
) -> list[AnalysisEstimate]:
    """One estimate per analysis in the spec (its preset applied), in the order the audit runs them."""
    spec, _ = apply_preset(spec, train_examples)
    examples = training_examples(spec, train_examples)
    estimates = []
    for analysis, work in _work(spec, train_examples).items():
        seconds = sum(w.steps * calibration.step_seconds(w.batch_size, multiply_adds) for w in work)
        expected = sum(_expected(w) * calibration.step_seconds(w.batch_size, multiply_adds) for w in work)
        if analysis == "compressibility":
            c = spec.compressibility
            points = len(c.methods) * (len(c.sparsities) + c.bisection_steps)
            evaluated = min(c.max_eval_examples, test_examples or train_examples)
            # A forward pass is about a third of a training step's multiply-adds.
            sweeps = points * evaluated * multiply_adds * calibration.seconds_per_multiply_add / 3
            seconds, expected = seconds + sweeps, expected + sweeps
        trials, steps = sum(w.trials for w in work), sum(w.steps for w in work)
        estimates.append(AnalysisEstimate(analysis, trials, steps, examples[analysis], seconds, expected))
    return estimates


def _expected(work: _Work) -> int:
    return work.steps if work.expected_steps is None else work.expected_steps


def _typical_steps(max_epochs: int, epoch_steps: int, true_labels: bool) -> int:
    """Steps to the typical epoch to fit, within the budget."""
    return min(max_epochs, EXPECTED_EPOCHS_TRUE if true_labels else EXPECTED_EPOCHS_HARD) * epoch_steps


def _work(spec: AuditSpec, n: int) -> dict[str, list[_Work]]:
    """Trials, steps and batch size of every kind of training each analysis does."""
    work: dict[str, list[_Work]] = {}
    if spec.randomization is not None:
        r, batch = spec.randomization, spec.randomization.training.batch_size
        trials, epoch_steps = len(r.conditions) * r.seeds_per_condition, steps_per_epoch(n, batch)
        expected = r.seeds_per_condition * sum(
            _typical_steps(r.training.max_epochs, epoch_steps, c.kind is ConditionKind.TRUE_LABELS)
            for c in r.conditions
        )
        work["randomization"] = [_Work(trials, trials * r.training.max_epochs * epoch_steps, batch, expected)]
        if needs_learning_rate_probe(spec):
            probes = len(CANDIDATE_RATES)
            work["randomization"].append(
                _Work(probes, probes * probe_epochs(n, batch) * steps_per_epoch(n, batch), batch)
            )
    if spec.memorization is not None:
        m = spec.memorization
        trials = (len(size_grid(m, n)) + m.bisection_steps) * m.seeds
        work["memorization"] = [_Work(trials, trials * budget_steps(m.training, n), m.training.batch_size)]
    if spec.rademacher is not None:
        r = spec.rademacher
        examples = min(n, r.max_examples)
        epoch_steps = steps_per_epoch(examples, r.training.batch_size)
        fitting = r.draws * r.training.max_epochs * epoch_steps if r.fit_signs else 0
        typical = r.draws * _typical_steps(r.training.max_epochs, epoch_steps, False) if r.fit_signs else 0
        ascents = 2 * len(r.relative_radii) * r.draws
        work["rademacher"] = [
            _Work(r.draws if r.fit_signs else 0, fitting, r.training.batch_size, typical),
            _Work(0, ascents * r.ascent_steps, examples),
        ]
        if r.generalization_measures:
            # Jiang et al.'s measures: one training to cross-entropy 0.1 (true labels), the sharpness ascents.
            budget = (r.training.max_epochs + 1) * epoch_steps
            typical = _typical_steps(r.training.max_epochs, epoch_steps, True) + epoch_steps
            work["rademacher"].append(_Work(1, budget, r.training.batch_size, typical))
            work["rademacher"].append(_Work(0, sharpness_examples(examples) // examples, examples))
    if spec.compressibility is not None:
        c = spec.compressibility
        points = len(c.methods) * (len(c.sparsities) + c.bisection_steps)
        work["compressibility"] = [
            _Work(points if c.finetune_steps else 0, points * c.finetune_steps, c.finetune.batch_size)
        ]
    if spec.memorization_scores is not None:
        s = spec.memorization_scores
        subset = subset_size(n, s.subset_fraction)
        epoch_steps = steps_per_epoch(subset, s.training.batch_size)
        steps = s.models * s.training.max_epochs * epoch_steps
        typical = s.models * _typical_steps(s.training.max_epochs, epoch_steps, True)
        work["memorization_scores"] = [_Work(s.models, steps, s.training.batch_size, typical)]
    return work
