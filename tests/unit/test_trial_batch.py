"""A trial batch is data in, data out: any executor (here a separate process) computes the same results."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from effcap.capacity.analyses.memorization import plan_subset, run_memorization, subset_fit
from effcap.capacity.analyses.randomization import plan_trials, run_randomization_test
from effcap.capacity.analyses.trial_batch import DatasetSource, PlannedTrial, TrainSubset, TrialBatch, results_from_json, results_to_json, run_trial_batch
from effcap.capacity.data.datasets import digits, train_subset
from effcap.capacity.errors import InputError
from effcap.capacity.models import parse_architecture
from effcap.capacity.specs import Condition, ConditionKind, MemorizationSpec, RandomizationSpec, TrainingSpec

ARCH = {"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": [16], "num_classes": 10}
TRAINING = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=3)
CONDITIONS = [Condition(kind=ConditionKind.TRUE_LABELS), Condition(kind=ConditionKind.RANDOM_LABELS), Condition(kind=ConditionKind.GAUSSIAN_INPUTS)]


def batch_for(spec: RandomizationSpec, **dataset) -> TrialBatch:
    trials = [PlannedTrial(condition=p.condition, seed_index=p.seed_index, seed=p.seed) for p in plan_trials(spec, audit_seed=7)]
    return TrialBatch(architecture=ARCH, dataset=DatasetSource(**(dataset or {"builtin": "digits"})), training=spec.training, trials=trials)


def numbers(results):
    """Everything but wall-clock times, which no two runs share."""
    return [(r.plan, r.labels_changed_fraction, r.outcome.train_accuracy, r.outcome.test_accuracy, r.outcome.steps_to_fit, r.outcome.curve) for r in results]


def test_a_batch_run_in_another_process_gives_the_same_results_as_the_analysis(tmp_path):
    spec = RandomizationSpec(conditions=CONDITIONS, seeds_per_condition=2, training=TRAINING)
    batch = batch_for(spec)
    (tmp_path / "batch.json").write_text(batch.model_dump_json())
    subprocess.run([sys.executable, "-m", "effcap.capacity.analyses.trial_batch", str(tmp_path / "batch.json"), str(tmp_path / "results.json"), "--device", "cpu"], check=True)
    remote, strategy = results_from_json(json.loads((tmp_path / "results.json").read_text()))
    analysis = run_randomization_test(parse_architecture(ARCH), digits(), spec, audit_seed=7, device=torch.device("cpu"))
    local = [t for c in analysis.conditions for t in c.trials]  # conditions and seeds in plan order
    assert strategy == analysis.engine_strategy
    assert numbers(remote) == numbers(local)
    assert len({r.outcome.curve[-1].train_loss for r in remote}) == 6  # six different trials, not one repeated


def test_results_survive_json_and_batches_are_validated(tmp_path):
    spec = RandomizationSpec(conditions=CONDITIONS[:1], seeds_per_condition=1, training=TRAINING.model_copy(update={"max_epochs": 1}))
    results, strategy = run_trial_batch(batch_for(spec), torch.device("cpu"))
    assert results_from_json(json.loads(json.dumps(results_to_json(results, strategy)))) == (results, strategy)
    with pytest.raises(ValueError, match="exactly one of builtin and path"):
        DatasetSource(builtin="digits", path="x.npz", sha256="0" * 64)
    with pytest.raises(ValueError, match="needs its sha256"):
        DatasetSource(path="x.npz")
    data = digits()
    np.savez(tmp_path / "d.npz", x_train=data.x_train, y_train=data.y_train)
    with pytest.raises(InputError) as info:
        run_trial_batch(batch_for(spec, path=str(tmp_path / "d.npz"), sha256="0" * 64), torch.device("cpu"))
    assert info.value.field == "batch.dataset.sha256"


def test_a_batch_whose_architecture_does_not_fit_its_dataset_is_refused_before_training():
    spec = RandomizationSpec(conditions=CONDITIONS[:1], seeds_per_condition=1, training=TRAINING)
    wrong = batch_for(spec).model_copy(update={"architecture": {**ARCH, "num_classes": 5}})
    with pytest.raises(InputError) as info:
        run_trial_batch(wrong, torch.device("cpu"))
    assert info.value.field == "spec.architecture.num_classes"
    with pytest.raises(ValueError, match="less than or equal to 9223372036854775807"):
        PlannedTrial(condition=CONDITIONS[0], seed_index=0, seed=2**64)


def test_a_batch_can_start_every_trial_from_a_checkpoint_named_with_its_digest(tmp_path):
    import hashlib

    from effcap.capacity.analyses.trial_batch import CheckpointSource
    from effcap.capacity.checkpoint import save_checkpoint
    from effcap.capacity.engine.trainer import evaluate
    from effcap.capacity.models import build_model

    # A learning rate of 1e-12 leaves the weights where they started: the first epoch's train loss is then
    # the starting weights' own loss on the (true) labels.
    still = TRAINING.model_copy(update={"max_epochs": 1, "learning_rate": 1e-12})
    spec = RandomizationSpec(conditions=CONDITIONS[:1], seeds_per_condition=2, training=still)
    architecture = parse_architecture(ARCH)
    start = build_model(architecture, seed=99)
    save_checkpoint(tmp_path / "init.safetensors", architecture, start.state_dict())
    digest = hashlib.sha256((tmp_path / "init.safetensors").read_bytes()).hexdigest()
    batch = batch_for(spec).model_copy(update={"init_checkpoint": CheckpointSource(path=str(tmp_path / "init.safetensors"), sha256=digest)})
    results, _ = run_trial_batch(batch, torch.device("cpu"))
    data = digits()
    start_loss, _ = evaluate(start, torch.from_numpy(data.x_train), torch.from_numpy(data.y_train))
    assert [r.outcome.curve[0].train_loss for r in results] == pytest.approx([start_loss, start_loss], rel=1e-5)
    fresh, _ = run_trial_batch(batch_for(spec), torch.device("cpu"))
    assert fresh[0].outcome.curve[0].train_loss != pytest.approx(start_loss, rel=1e-3)  # fresh initialisations start elsewhere
    wrong = batch.model_copy(update={"init_checkpoint": CheckpointSource(path=str(tmp_path / "init.safetensors"), sha256="0" * 64)})
    with pytest.raises(InputError) as info:
        run_trial_batch(wrong, torch.device("cpu"))
    assert info.value.field == "batch.init_checkpoint.sha256"


def test_a_memorisation_point_is_a_trial_batch_on_a_train_subset():
    spec = MemorizationSpec(min_subset_size=64, max_subset_size=64, bisection_steps=0, seeds=2, training=TRAINING)
    analysis = run_memorization(parse_architecture(ARCH), digits(), spec, audit_seed=7, device=torch.device("cpu"))
    plan = plan_subset(spec, 64, audit_seed=7, train_examples=1297)
    batch = TrialBatch(
        architecture=ARCH,
        dataset=DatasetSource(builtin="digits"),
        training=plan.training,
        trials=[PlannedTrial(condition=p.condition, seed_index=p.seed_index, seed=p.seed) for p in plan.trials],
        train_subset=TrainSubset(size=plan.size, seed=plan.subset_seed),
    )
    results, _ = run_trial_batch(TrialBatch.model_validate_json(batch.model_dump_json()), torch.device("cpu"))
    # 64 examples: one step of 128 per epoch, for the 3 epochs' steps of the whole split (11 each).
    assert [(r.outcome.curve[0].step, r.outcome.steps_run) for r in results] == [(1, 33), (1, 33)]
    assert subset_fit(64, [r.outcome for r in results]) == next(p for p in analysis.points if p.size == 64)
    assert all(0.7 < r.labels_changed_fraction < 1.0 for r in results)  # random labels: about 9 in 10 change
    too_large = batch.model_copy(update={"train_subset": TrainSubset(size=5000, seed=1)})
    with pytest.raises(InputError) as info:
        run_trial_batch(too_large, torch.device("cpu"))
    assert info.value.field == "batch.train_subset.size"


def test_a_train_subset_draws_distinct_train_rows_by_its_seed_and_keeps_the_test_split():
    data = digits()
    subset = train_subset(data, 100, seed=3)
    rows = [int(np.flatnonzero((data.x_train == x).all(axis=(1, 2, 3)))[0]) for x in subset.x_train]
    assert len(set(rows)) == 100
    assert (data.y_train[rows] == subset.y_train).all()
    assert (subset.x_test == data.x_test).all() and len(subset.y_test) == len(data.y_test)
    assert (train_subset(data, 100, seed=3).x_train == subset.x_train).all()
    assert not (train_subset(data, 100, seed=4).x_train == subset.x_train).all()
    with pytest.raises(ValueError, match="size <= 1297"):
        train_subset(data, 1298, seed=3)
