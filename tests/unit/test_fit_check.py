"""The screened fit check reports what a full pass after every epoch reports (capacity/engine/fit_check.py)."""

import numpy as np
import pytest
import torch

from effcap.capacity.analyses.trial_batch import TrialPlan, run_trials
from effcap.capacity.data.datasets import digits, train_subset
from effcap.capacity.engine.fit_check import FIT_SCREEN_SLACK, FitScreen, on_curve_schedule, trains_at_random
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.specs import Condition, ConditionKind, TrainingSpec

DIGITS = {"input_shape": [1, 8, 8], "num_classes": 10}
MLP = parse_architecture({"family": "mlp", "hidden_sizes": [64], **DIGITS})
CNN_BN = parse_architecture({"family": "small_cnn", "channels": [16, 32], "batch_norm": True, **DIGITS})
CONDITIONS = [
    Condition(kind=ConditionKind.TRUE_LABELS),
    Condition(kind=ConditionKind.CORRUPT_LABELS, corruption=0.5),
    Condition(kind=ConditionKind.RANDOM_LABELS),
    Condition(kind=ConditionKind.GAUSSIAN_INPUTS),
]


def reported(results):
    """What a report says about each trial's fit (the curve aside: it holds only the epochs evaluated)."""
    return [
        (
            r.outcome.fitted,
            r.outcome.steps_to_fit,
            r.outcome.epochs_to_fit,
            r.outcome.steps_run,
            r.outcome.train_accuracy,
        )
        for r in results
    ]


def both_ways(architecture, size, training, strategy, seeds=3):
    data = train_subset(digits(), size, 7)
    plans = [TrialPlan(c, i, 1000 * i + 17) for c in CONDITIONS for i in range(seeds)]
    runs = [
        run_trials(
            architecture,
            data,
            plans,
            training,
            torch.device("cpu"),
            engine=EngineOptions(strategy=strategy, screen_fit_check=screen),
        )[0]
        for screen in (False, True)
    ]
    return runs


@pytest.mark.parametrize(
    ("architecture", "size", "strategy", "threshold"),
    [
        (MLP, 200, "sequential", 1.0),
        (MLP, 200, "grouped", 0.95),
        (MLP, 100, "vmap", 1.0),  # a subset within one batch: one step per epoch, as memorisation trains it
        (CNN_BN, 200, "sequential", 0.98),  # train-mode BatchNorm sees batch statistics, the full pass running ones
    ],
    ids=["mlp-sequential", "mlp-grouped-0.95", "mlp-vmap-one-batch", "cnn-batchnorm"],
)
def test_screened_trials_fit_at_the_step_a_full_pass_every_epoch_finds(architecture, size, strategy, threshold):
    training = TrainingSpec(
        learning_rate=0.1, lr_decay_per_epoch=1.0, batch_size=128, max_epochs=150, fit_threshold=threshold
    )
    every_epoch, screened = both_ways(architecture, size, training, strategy)
    assert reported(screened) == reported(every_epoch)
    assert sum(r.outcome.fitted for r in every_epoch) >= 6  # fits to compare, not only budgets run out
    for a, b in zip(every_epoch, screened):
        # The screened curve is the full one with epochs left out, never other numbers.
        assert {p.epoch: p.train_accuracy for p in b.outcome.curve}.items() <= {
            p.epoch: p.train_accuracy for p in a.outcome.curve
        }.items()
        assert b.outcome.test_accuracy == pytest.approx(a.outcome.test_accuracy, abs=1e-12)
    passes = sum(len(r.outcome.curve) for r in screened) / sum(len(r.outcome.curve) for r in every_epoch)
    assert passes < 0.8  # the screen saves passes


def test_the_screen_asks_for_a_pass_when_the_running_accuracy_plus_the_largest_gap_nears_the_threshold():
    screen = FitScreen(threshold=1.0, max_epochs=1000)
    assert [e for e in range(1, 70) if on_curve_schedule(e, 1000)] == [1, 2, 4, 8, 16, 32, 64]  # stride 32 of 1,000
    assert on_curve_schedule(1000, 1000) and on_curve_schedule(96, 1000) and not on_curve_schedule(97, 1000)
    assert not screen.full_pass_due(5, 0.9) and screen.full_pass_due(5, 1.01 - FIT_SCREEN_SLACK)
    screen.observe(2, 0.1, 0.9)  # a warm-up epoch's gap does not count
    assert screen.largest_gap == 0.0
    screen.observe(4, 0.7, 0.8)
    screen.observe(8, 0.8, 0.85)  # a smaller gap later does not shrink the calibration
    assert screen.largest_gap == pytest.approx(0.1)
    assert not screen.full_pass_due(5, 0.84) and screen.full_pass_due(5, 0.86)
    assert FitScreen(threshold=1.0, max_epochs=1000, enabled=False).full_pass_due(5, 0.0)


def test_a_network_with_dropout_is_evaluated_every_epoch():
    with_dropout = {
        "family": "wide_resnet",
        "depth": 10,
        "widen_factor": 1,
        "stem_width": 4,
        "stage_widths": [4, 8, 16],
        **DIGITS,
    }
    assert trains_at_random(build_model(parse_architecture({**with_dropout, "dropout": 0.3}), device="meta"))
    assert not trains_at_random(build_model(parse_architecture(with_dropout), device="meta"))
    assert not trains_at_random(build_model(CNN_BN, device="meta"))
    data = train_subset(digits(), 64, 7)
    training = TrainingSpec(learning_rate=0.05, lr_decay_per_epoch=1.0, max_epochs=12)
    plans = [TrialPlan(Condition(kind=ConditionKind.RANDOM_LABELS), 0, 3)]
    architecture = parse_architecture({**with_dropout, "dropout": 0.3})
    [result], _ = run_trials(
        architecture, data, plans, training, torch.device("cpu"), engine=EngineOptions(strategy="sequential")
    )
    assert [p.epoch for p in result.outcome.curve] == list(range(1, result.outcome.steps_run + 1))
    assert np.isfinite(result.outcome.train_loss)
