"""Building an AuditSpec message from command-line words, without the numerical library."""

from __future__ import annotations

import json
import re
from pathlib import Path

from google.protobuf import struct_pb2

from effcap.clients.errors import EffcapError
from effcap.protos.v1 import artifact_pb2, spec_pb2

_CORRUPT = re.compile(r"^corrupt[(:=]\s*([0-9.eE+-]+)\s*\)?$")
_NAMED = {
    "true": spec_pb2.CONDITION_KIND_TRUE_LABELS,
    "random": spec_pb2.CONDITION_KIND_RANDOM_LABELS,
    "shuffled_pixels": spec_pb2.CONDITION_KIND_SHUFFLED_PIXELS,
    "random_pixels": spec_pb2.CONDITION_KIND_RANDOM_PIXELS,
    "gaussian": spec_pb2.CONDITION_KIND_GAUSSIAN_INPUTS,
}
CONDITION_HELP = "comma-separated: true, corrupt(P), random, shuffled_pixels, random_pixels, gaussian"


def parse_condition(text: str) -> spec_pb2.Condition:
    """"true", "random", "corrupt(0.5)" or "corrupt:0.5", ... as a Condition message."""
    text = text.strip().lower()
    match = _CORRUPT.match(text)
    if match:
        return spec_pb2.Condition(kind=spec_pb2.CONDITION_KIND_CORRUPT_LABELS, corruption=float(match.group(1)))
    if text in _NAMED:
        return spec_pb2.Condition(kind=_NAMED[text])
    raise ValueError(f"unknown condition {text!r}; use {CONDITION_HELP}")


def parse_conditions(text: str) -> list[spec_pb2.Condition]:
    # Split on commas outside parentheses is unnecessary: corrupt(P) holds no comma.
    return [parse_condition(part) for part in text.split(",") if part.strip()]


def dataset_ref(data: str | None, artifact_digest: artifact_pb2.Digest | None = None) -> spec_pb2.DatasetRef:
    """"builtin:NAME" names a built-in; anything else is a file, referenced by its digest; None, no data."""
    if data is None:
        return spec_pb2.DatasetRef()
    if data.startswith("builtin:"):
        return spec_pb2.DatasetRef(builtin=data.removeprefix("builtin:"))
    return spec_pb2.DatasetRef(artifact=artifact_digest)


def architecture_struct(path: Path) -> struct_pb2.Struct:
    """The --arch file: a JSON object such as {"family": "mlp", "hidden_sizes": [512, 512], ...}."""
    try:
        value = json.loads(path.read_text())
    except OSError as error:
        raise EffcapError(f"--arch: cannot read {path}: {error.strerror}", "INVALID_ARGUMENT") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EffcapError(f"--arch: {path} is not JSON: {error}", "INVALID_ARGUMENT") from None
    if not isinstance(value, dict):
        raise EffcapError(f"--arch: {path} must hold a JSON object (an architecture spec), not {type(value).__name__}", "INVALID_ARGUMENT")
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def training_spec(
    learning_rate: float | None = None,
    lr_decay: float | None = None,
    batch_size: int | None = None,
    max_epochs: int | None = None,
    fit_threshold: float | None = None,
) -> spec_pb2.TrainingSpec:
    """Only the options given are set; the server fills in documented defaults for the rest."""
    return _with_fields(
        spec_pb2.TrainingSpec(),
        learning_rate=learning_rate,
        lr_decay_per_epoch=lr_decay,
        batch_size=batch_size,
        max_epochs=max_epochs,
        fit_threshold=fit_threshold,
    )


def _with_fields(message, **values):
    """Set the given optional fields, leaving the unset (None) ones to the server's defaults."""
    for name, value in values.items():
        if value is not None:
            setattr(message, name, value)
    return message


def randomization_spec(
    conditions: str | None,
    seeds: int | None,
    learning_rate: float | None,
    lr_decay: float | None,
    batch_size: int | None,
    max_epochs: int | None,
    fit_threshold: float | None,
    init_from_checkpoint: bool = False,
) -> spec_pb2.RandomizationSpec:
    spec = spec_pb2.RandomizationSpec(training=training_spec(learning_rate, lr_decay, batch_size, max_epochs, fit_threshold))
    if conditions:
        spec.conditions.extend(parse_conditions(conditions))
    if seeds is not None:
        spec.seeds_per_condition = seeds
    if init_from_checkpoint:
        spec.init = spec_pb2.INIT_MODE_CHECKPOINT
    return spec


def memorization_spec(
    min_size: int | None, max_size: int | None, seeds: int | None, bisection_steps: int | None, training: spec_pb2.TrainingSpec
) -> spec_pb2.MemorizationSpec:
    return _with_fields(
        spec_pb2.MemorizationSpec(training=training), min_subset_size=min_size, max_subset_size=max_size, seeds=seeds, bisection_steps=bisection_steps
    )


def memorization_scores_spec(
    models: int | None, subset_fraction: float | None, top: int | None, training: spec_pb2.TrainingSpec
) -> spec_pb2.MemorizationScoresSpec:
    spec = spec_pb2.MemorizationScoresSpec(training=training)
    return _with_fields(spec, models=models, subset_fraction=subset_fraction, top_examples=top, top_influence_pairs=top)


def rademacher_spec(
    draws: int | None, relative_radii: list[float] | None, max_examples: int | None, fit_signs: bool, training: spec_pb2.TrainingSpec
) -> spec_pb2.RademacherSpec:
    spec = _with_fields(spec_pb2.RademacherSpec(training=training, fit_signs=fit_signs), draws=draws, max_examples=max_examples)
    spec.relative_radii.extend(relative_radii or [])
    return spec
