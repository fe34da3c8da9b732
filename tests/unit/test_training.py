"""The trainer and the randomization test on real data: determinism and memorisation."""

import numpy as np
import pytest
import torch

from effcap.capacity.analyses.randomization import plan_trials, run_randomization_test
from effcap.capacity.data.datasets import digits
from effcap.capacity.models import MLPSpec
from effcap.capacity.specs import Condition, ConditionKind, RandomizationSpec, TrainingSpec

DIGITS_MLP = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(512, 512))
FAST = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=300)


def run(conditions, seeds=1, seed=0, training=FAST):
    spec = RandomizationSpec(conditions=conditions, seeds_per_condition=seeds, training=training)
    return run_randomization_test(DIGITS_MLP, digits(), spec, seed, torch.device("cpu"))


def test_mlp_memorises_random_digits_labels_while_test_accuracy_stays_at_chance():
    result = run([Condition(kind=ConditionKind.TRUE_LABELS), Condition(kind=ConditionKind.RANDOM_LABELS)])
    true, rand = result.conditions
    assert true.trials[0].outcome.fitted and true.test_accuracy.mean > 0.9
    assert rand.trials[0].outcome.fitted
    assert rand.train_accuracy.mean == 1.0
    assert abs(rand.test_accuracy.mean - 0.1) < 0.05  # chance is 1/10
    assert rand.trials[0].labels_changed_fraction > 0.85  # about 9/10 of labels differ
    assert rand.slowdown_vs_true is not None and rand.slowdown_vs_true > 1.5  # random labels take longer


def test_same_seed_gives_identical_trials_and_another_seed_does_not():
    conditions = [Condition(kind=ConditionKind.CORRUPT_LABELS, corruption=0.5)]
    short = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=5)
    a, b, c = run(conditions, training=short), run(conditions, training=short), run(conditions, seed=1, training=short)
    curve = lambda r: [(p.step, p.train_loss, p.train_accuracy) for p in r.conditions[0].trials[0].outcome.curve]  # noqa: E731
    assert curve(a) == curve(b)
    assert a.conditions[0].test_accuracy == b.conditions[0].test_accuracy
    assert curve(a) != curve(c)


def test_budget_exhausted_trials_report_not_fitted():
    result = run([Condition(kind=ConditionKind.RANDOM_LABELS)], training=TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=2))
    trial = result.conditions[0].trials[0].outcome
    assert not trial.fitted and trial.steps_to_fit == 0 and trial.steps_run == 2 * 11
    assert result.conditions[0].fitted_fraction == 0 and result.conditions[0].slowdown_vs_true is None


def test_trial_seeds_are_stable_per_condition_and_index():
    one = RandomizationSpec(conditions=[Condition(kind=ConditionKind.RANDOM_LABELS)], seeds_per_condition=2)
    two = RandomizationSpec(conditions=[Condition(kind=ConditionKind.TRUE_LABELS), Condition(kind=ConditionKind.RANDOM_LABELS)], seeds_per_condition=2)
    seeds_one = [p.seed for p in plan_trials(one, 5)]
    seeds_two = [p.seed for p in plan_trials(two, 5) if p.condition.kind is ConditionKind.RANDOM_LABELS]
    assert seeds_one == seeds_two  # adding a condition does not change the others' draws
    assert len(set(p.seed for p in plan_trials(two, 5))) == 4
    assert np.all(np.array(seeds_one) < 2**63)


def test_init_checkpoint_trials_start_from_the_checkpoint_weights():
    from effcap.capacity.engine.trainer import evaluate
    from effcap.capacity.models import build_model

    data = digits()
    checkpoint_model = build_model(DIGITS_MLP, seed=123)
    expected_loss, _ = evaluate(checkpoint_model, torch.from_numpy(data.x_train), torch.from_numpy(data.y_train))
    # A learning rate so small that one epoch leaves the weights where they started.
    frozen = TrainingSpec(learning_rate=1e-12, max_epochs=1)
    spec = RandomizationSpec(conditions=[Condition(kind=ConditionKind.TRUE_LABELS)], seeds_per_condition=2, init="checkpoint", training=frozen)
    result = run_randomization_test(DIGITS_MLP, data, spec, 0, torch.device("cpu"), checkpoint_state=checkpoint_model.state_dict())
    for trial in result.conditions[0].trials:
        assert trial.outcome.curve[0].train_loss == pytest.approx(expected_loss, rel=1e-5)
    reinit = run_randomization_test(DIGITS_MLP, data, spec.model_copy(update={"init": "reinit"}), 0, torch.device("cpu"))
    assert all(abs(t.outcome.curve[0].train_loss - expected_loss) > 1e-3 for t in reinit.conditions[0].trials)


def test_when_some_trials_run_out_of_budget_the_slowdown_is_a_lower_bound():
    from effcap.capacity.analyses.randomization import summarise
    from effcap.capacity.analyses.trial_batch import TrialPlan, TrialResult
    from effcap.capacity.engine.trainer import TrialOutcome

    true, random = Condition(kind=ConditionKind.TRUE_LABELS), Condition(kind=ConditionKind.RANDOM_LABELS)
    spec = RandomizationSpec(conditions=[true, random], seeds_per_condition=2)

    def trial(condition, index, fitted, steps):
        return TrialResult(TrialPlan(condition, index, index), TrialOutcome(1.0, 0.1, 0.1, fitted, steps if fitted else 0, 1, 1.0, steps, 1.0), 0.0)

    results = [trial(true, 0, True, 100), trial(true, 1, True, 300), trial(random, 0, True, 500), trial(random, 1, False, 1000)]
    summary = summarise(spec, 10, results, "grouped").conditions[1]
    assert summary.slowdown_vs_true is None
    assert summary.slowdown_lower_bound == pytest.approx((500 + 1000) / 2 / 200)
    # Every trial fitted: the slowdown itself, and no bound.
    results[3] = trial(random, 1, True, 700)
    summary = summarise(spec, 10, results, "grouped").conditions[1]
    assert (summary.slowdown_vs_true, summary.slowdown_lower_bound) == (pytest.approx(3.0), None)
    # A true-label trial that did not fit leaves no baseline at all.
    results[0] = trial(true, 0, False, 1000)
    assert summarise(spec, 10, results, "grouped").conditions[1].slowdown_lower_bound is None
