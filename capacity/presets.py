"""Presets: what an audit does with the options its spec leaves unset.

The paper's schedule (lr 0.01, x0.95 after every epoch, Zhang et al. appendix A) was tuned for
CIFAR-10's 390-step epochs; on an 11-step digits epoch it decays to nothing before random labels are
memorised, and the report then describes the budget, not the network. So the `standard` preset
counts the schedule in SGD steps: the paper's decay per 390 steps, and a budget of at least
STANDARD_MIN_STEPS steps (or 100 epochs, whichever is longer). Its learning rate comes from a short
probe on true labels (capacity/analyses/learning_rate_probe.py), run when the spec sets none.
`quick` is the standard schedule on fewer conditions and seeds; `paper` is the paper's protocol.
Options the spec sets always win, field by field; the resolved values are echoed in the report.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from effcap.capacity.engine.trainer import steps_per_epoch
from effcap.capacity.specs import AuditSpec, Condition, ConditionKind, TrainingSpec

# SGD steps in one CIFAR-10 epoch at batch 128: the unit the paper's per-epoch decay was set in.
PAPER_EPOCH_STEPS = 390
PAPER_DECAY_PER_EPOCH = 0.95
PAPER_EPOCHS = 100
# The budget's floor in SGD steps: an MLP 2x512 memorises random digits labels in about 2,000 (bench/RESULTS.md).
STANDARD_MIN_STEPS = 5000


def _conditions(*labels: tuple[ConditionKind, float]) -> list[Condition]:
    return [Condition(kind=kind, corruption=p) for kind, p in labels]


_TRUE, _RANDOM = (ConditionKind.TRUE_LABELS, 0.0), (ConditionKind.RANDOM_LABELS, 0.0)
_CORRUPT = [(ConditionKind.CORRUPT_LABELS, p) for p in (0.2, 0.4, 0.6, 0.8)]
_PIXELS = [
    (ConditionKind.SHUFFLED_PIXELS, 0.0),
    (ConditionKind.RANDOM_PIXELS, 0.0),
    (ConditionKind.GAUSSIAN_INPUTS, 0.0),
]

# Per analysis, the values a preset gives the fields the spec leaves unset (standard: the specs' own defaults).
PRESET_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "randomization": {"conditions": _conditions(_TRUE, _RANDOM), "seeds_per_condition": 1},
        "memorization": {"bisection_steps": 2},
        "rademacher": {"draws": 4, "relative_radii": [0.01, 0.1, 1.0]},
        "memorization_scores": {"models": 16},
    },
    "standard": {},
    "paper": {
        "randomization": {"conditions": _conditions(_TRUE, *_CORRUPT, _RANDOM, *_PIXELS), "seeds_per_condition": 3},
    },
}


def apply_preset(spec: AuditSpec, train_examples: int) -> tuple[AuditSpec, list[str]]:
    """The spec with its preset's values in every field it left unset and the randomization schedule resolved,
    and one line per schedule value chosen, for the report.

    Deterministic and cheap (no training): the admission check and the dry-run cost the audit from it. The
    learning rate of a standard or quick randomization test stays unset here; `needs_learning_rate_probe` says so.
    """
    updates: dict[str, Any] = {}
    for analysis, values in PRESET_FIELDS[spec.preset].items():
        section = getattr(spec, analysis)
        if section is not None:
            updates[analysis] = _fill_unset(section, values)
    notes: list[str] = []
    randomization = updates.get("randomization", spec.randomization)
    if randomization is not None:
        training = scheduled_training(randomization.training, train_examples, spec.preset)
        notes = schedule_notes(randomization.training, training, train_examples, spec.preset)
        updates["randomization"] = _replace(randomization, training=training)
    return (_replace(spec, **updates) if updates else spec), notes


def schedule_notes(given: TrainingSpec, resolved: TrainingSpec, train_examples: int, preset: str) -> list[str]:
    """What the preset chose for the training fields the spec left unset, and why."""
    chosen = set(resolved.model_fields_set) - set(given.model_fields_set)
    epoch_steps = steps_per_epoch(train_examples, resolved.batch_size)
    notes = []
    if preset == "paper":
        if chosen:
            notes.append(f"randomization: the paper's schedule for {', '.join(sorted(chosen))} (preset paper)")
        return notes
    if "lr_decay_per_epoch" in chosen:
        notes.append(
            f"randomization: learning-rate decay {resolved.lr_decay_per_epoch:.4f} per {epoch_steps}-step epoch, the paper's "
            f"{PAPER_DECAY_PER_EPOCH} per {PAPER_EPOCH_STEPS} SGD steps counted in steps (preset {preset})"
        )
    if "max_epochs" in chosen:
        notes.append(
            f"randomization: budget {resolved.max_epochs} epochs = {resolved.max_epochs * epoch_steps} SGD steps, at least "
            f"{STANDARD_MIN_STEPS} steps or {PAPER_EPOCHS} epochs (preset {preset})"
        )
    return notes


def scheduled_training(training: TrainingSpec, train_examples: int, preset: str) -> TrainingSpec:
    """Decay and budget for the fields left unset: the paper's per epoch, or (standard, quick) per SGD step."""
    if preset == "paper":
        values = {"learning_rate": 0.01, "lr_decay_per_epoch": PAPER_DECAY_PER_EPOCH, "max_epochs": PAPER_EPOCHS}
        return _fill_unset(training, values)
    epoch_steps = steps_per_epoch(train_examples, training.batch_size)
    values = {
        "lr_decay_per_epoch": PAPER_DECAY_PER_EPOCH ** (epoch_steps / PAPER_EPOCH_STEPS),
        "max_epochs": max(PAPER_EPOCHS, math.ceil(STANDARD_MIN_STEPS / epoch_steps)),
    }
    return _fill_unset(training, values)


def needs_learning_rate_probe(spec: AuditSpec) -> bool:
    """True when the randomization test's learning rate is left to the probe (standard and quick presets)."""
    r = spec.randomization
    return r is not None and spec.preset != "paper" and "learning_rate" not in r.training.model_fields_set


def with_learning_rate(spec: AuditSpec, learning_rate: float) -> AuditSpec:
    """The spec with the randomization test's learning rate set (the probe's choice)."""
    training = _replace(spec.randomization.training, learning_rate=learning_rate)
    return _replace(spec, randomization=_replace(spec.randomization, training=training))


def _fill_unset(model: BaseModel, values: dict[str, Any]) -> Any:
    unset = {name: value for name, value in values.items() if name not in model.model_fields_set}
    return _replace(model, **unset) if unset else model


def _replace(model: BaseModel, **updates: Any) -> Any:
    """A validated copy with `updates` set (and counted as set, so a second resolution changes nothing)."""
    data = {name: getattr(model, name) for name in model.model_fields_set}
    return type(model).model_validate({**data, **updates})
