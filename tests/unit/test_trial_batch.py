"""A trial batch is data in, data out: any executor (here a separate process) computes the same results."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from effcap.capacity.analyses.randomization import plan_trials, run_randomization_test
from effcap.capacity.analyses.trial_batch import DatasetSource, PlannedTrial, TrialBatch, results_from_json, results_to_json, run_trial_batch
from effcap.capacity.data.datasets import digits
from effcap.capacity.errors import InputError
from effcap.capacity.models import parse_architecture
from effcap.capacity.specs import Condition, ConditionKind, RandomizationSpec, TrainingSpec

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
    from effcap.capacity.models import build_model

    spec = RandomizationSpec(conditions=CONDITIONS[:1], seeds_per_condition=2, training=TRAINING.model_copy(update={"max_epochs": 1}))
    architecture = parse_architecture(ARCH)
    save_checkpoint(tmp_path / "init.safetensors", architecture, build_model(architecture, seed=99).state_dict())
    digest = hashlib.sha256((tmp_path / "init.safetensors").read_bytes()).hexdigest()
    batch = batch_for(spec).model_copy(update={"init_checkpoint": CheckpointSource(path=str(tmp_path / "init.safetensors"), sha256=digest)})
    results, _ = run_trial_batch(batch, torch.device("cpu"))
    fresh, _ = run_trial_batch(batch_for(spec), torch.device("cpu"))
    # Both trials start from the same weights (only their data order differs), unlike fresh initialisations.
    assert results[0].outcome.curve[0].train_loss != fresh[0].outcome.curve[0].train_loss
    wrong = batch.model_copy(update={"init_checkpoint": CheckpointSource(path=str(tmp_path / "init.safetensors"), sha256="0" * 64)})
    with pytest.raises(InputError) as info:
        run_trial_batch(wrong, torch.device("cpu"))
    assert info.value.field == "batch.init_checkpoint.sha256"
