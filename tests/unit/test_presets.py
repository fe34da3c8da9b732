"""Presets and fitted defaults: what an audit trains with when its spec leaves options unset."""

from __future__ import annotations

import math

import pytest

from effcap.capacity.presets import (
    PAPER_EPOCH_STEPS,
    STANDARD_MIN_STEPS,
    apply_preset,
    needs_learning_rate_probe,
    with_learning_rate,
)
from effcap.capacity.specs import AuditSpec
from effcap.service import codec
from effcap.service.runner import unfitted_advice


def _spec(**fields) -> AuditSpec:
    return AuditSpec.model_validate(fields)


def test_standard_counts_the_papers_decay_and_budget_in_sgd_steps():
    # digits: 1297 train examples at batch 128 are 11-step epochs.
    spec, notes = apply_preset(_spec(randomization={}), 1297)
    training = spec.randomization.training
    assert training.lr_decay_per_epoch == pytest.approx(0.95 ** (11 / PAPER_EPOCH_STEPS))
    assert training.max_epochs == math.ceil(STANDARD_MIN_STEPS / 11) == 455
    # After 390 steps the rate has decayed by the paper's one-epoch factor, whatever the epoch length.
    assert training.lr_decay_per_epoch ** (PAPER_EPOCH_STEPS / 11) == pytest.approx(0.95)
    assert needs_learning_rate_probe(spec)
    assert any("455 epochs = 5005 SGD steps" in n for n in notes) and any(
        "0.9986 per 11-step epoch" in n for n in notes
    )
    # CIFAR-sized splits keep the paper's 100 epochs (39,100 steps exceed the floor) and its per-epoch decay.
    cifar, _ = apply_preset(_spec(randomization={}), 50_000)
    assert (cifar.randomization.training.max_epochs, cifar.randomization.training.lr_decay_per_epoch) == (
        100,
        pytest.approx(0.95 ** (391 / 390)),
    )


def test_options_the_spec_sets_win_and_resolution_is_idempotent():
    given = {"randomization": {"training": {"learning_rate": 0.05, "max_epochs": 7}, "seeds_per_condition": 4}}
    spec, notes = apply_preset(_spec(**given, preset="quick"), 1297)
    r = spec.randomization
    assert (r.training.learning_rate, r.training.max_epochs, r.seeds_per_condition) == (0.05, 7, 4)
    assert [c.label for c in r.conditions] == ["true", "random"]  # quick's conditions: the spec left them unset
    assert not needs_learning_rate_probe(spec)
    assert len(notes) == 1 and "decay" in notes[0]
    again, notes_again = apply_preset(spec, 1297)
    assert again == spec and notes_again == []
    # Through the wire and back (the report's spec), the resolved values stay resolved.
    assert apply_preset(codec.audit_spec_from_proto(codec.audit_spec_to_proto(spec)), 1297)[0] == spec


def test_paper_is_the_papers_protocol():
    spec, _ = apply_preset(_spec(preset="paper", randomization={}), 1297)
    r = spec.randomization
    assert [c.label for c in r.conditions] == [
        "true",
        "corrupt(0.2)",
        "corrupt(0.4)",
        "corrupt(0.6)",
        "corrupt(0.8)",
        "random",
        "shuffled_pixels",
        "random_pixels",
        "gaussian",
    ]
    assert (r.training.learning_rate, r.training.lr_decay_per_epoch, r.training.max_epochs) == (0.01, 0.95, 100)
    assert not needs_learning_rate_probe(spec)


def test_quick_shrinks_the_other_analyses_only_where_unset():
    spec, _ = apply_preset(_spec(preset="quick", rademacher={"draws": 6}, memorization_scores={}), 1297)
    assert spec.rademacher.draws == 6 and spec.rademacher.relative_radii == [0.01, 0.1, 1.0]
    assert spec.memorization_scores.models == 16


def test_a_bad_preset_is_refused_naming_the_field():
    from effcap.capacity.errors import InputError
    from effcap.protos.v1 import spec_pb2

    message = spec_pb2.AuditSpec(preset="fast", randomization=spec_pb2.RandomizationSpec())
    with pytest.raises(InputError) as error:
        codec.audit_spec_from_proto(message)
    assert error.value.field == "spec.preset"


def test_the_probes_choice_is_recorded_in_the_spec():
    spec, _ = apply_preset(_spec(randomization={}), 1297)
    chosen = with_learning_rate(spec, 0.03)
    assert chosen.randomization.training.learning_rate == 0.03 and not needs_learning_rate_probe(chosen)


def test_unfitted_trials_are_told_which_flags_to_change():
    spec, _ = apply_preset(_spec(preset="paper", randomization={}), 1297)
    advice = unfitted_advice(spec, 11)
    for flag in ("--epochs 200", "(now 100 = 1100 SGD steps", "--lr-decay 1", "--lr (now 0.01)", "--preset standard"):
        assert flag in advice
    assert "0.0059 of the rate" in advice  # 0.95^100


def test_the_learning_rate_probe_is_deterministic_and_picks_the_best_candidate():
    import torch

    from effcap.capacity.analyses.learning_rate_probe import CANDIDATE_RATES, probe_learning_rate
    from effcap.capacity.data.datasets import digits
    from effcap.capacity.models import MLPSpec
    from effcap.capacity.specs import TrainingSpec

    architecture = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(32,))
    data, training = digits(), TrainingSpec(fit_threshold=1.0)
    first = probe_learning_rate(architecture, data, training, 7, torch.device("cpu"))
    again = probe_learning_rate(architecture, data, training, 7, torch.device("cpu"))
    assert first == again and first.steps == 110  # 10 epochs of 11 steps: the first whole epochs past 100 steps
    assert set(first.final_losses) == set(CANDIDATE_RATES)
    # None of these fits all of digits in 110 steps, so the lowest loss wins.
    assert first.final_losses[first.learning_rate] == min(first.final_losses.values())
    assert first.describe().startswith(f"learning rate {first.learning_rate:g} chosen by a 110-step probe")
