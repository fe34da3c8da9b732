"""The trial executor's cut into batches, its batch store and its equality with `run_trials` (trial_executor.py)."""

from __future__ import annotations

import dataclasses

import torch

from effcap.capacity.analyses.batch_split import BATCH_MEMORY_BYTES, split_trials, trial_bytes
from effcap.capacity.analyses.trial_batch import DatasetSource, TrialPlan, run_trial_batch, run_trials
from effcap.capacity.analyses.trial_executor import TrialExecutor, TrialSources
from effcap.capacity.data.datasets import digits, train_subset
from effcap.capacity.models import parse_architecture
from effcap.capacity.specs import Condition, ConditionKind, TrainingSpec
from effcap.service.executors.batch_store import FileBatchStore

MLP = parse_architecture({"family": "mlp", "hidden_sizes": [32], "input_shape": [1, 8, 8], "num_classes": 10})
TRAINING = TrainingSpec(learning_rate=0.1, batch_size=64, max_epochs=2, lr_decay_per_epoch=1.0)
TRUE, RANDOM = Condition(kind=ConditionKind.TRUE_LABELS), Condition(kind=ConditionKind.RANDOM_LABELS)
PIXELS = Condition(kind=ConditionKind.RANDOM_PIXELS)
CPU = torch.device("cpu")


def plans() -> list[TrialPlan]:
    return [TrialPlan(c, i, 100 * i + 3) for c in (TRUE, PIXELS, RANDOM) for i in range(2)]


def outcomes(results):
    """Every field but wall-clock time."""
    return [{k: v for k, v in dataclasses.asdict(r.outcome).items() if not k.startswith("seconds")} for r in results]


def test_the_cut_keeps_kinds_apart_and_plan_order_within_them():
    cut = split_trials(plans(), per_trial_bytes=1, device_kind="cpu", stack_size=64, cap=3)
    assert cut == [[0, 1, 4], [5], [2, 3]]  # label trials (true, random), then the pixel trials


def test_the_memory_estimate_limits_a_batch():
    per_trial = trial_bytes(MLP, 64)
    # Parameters: (64*32 + 32) + (32*10 + 10) = 2,410 floats at 16 bytes; activations per example: the hidden
    # layer's 32 outputs, the ReLU's 32 and the head's 10, at 12 bytes each, for 64 examples.
    assert per_trial == 16 * 2410 + 12 * (32 + 32 + 10) * 64
    # Two trials fit the CPU's budget: batches of two; the GPU's budget takes all of a kind at once.
    assert split_trials(plans(), BATCH_MEMORY_BYTES["cpu"] // 2, "cpu", 64) == [[0, 1], [4, 5], [2, 3]]
    assert split_trials(plans(), BATCH_MEMORY_BYTES["cpu"] // 2, "cuda", 64) == [[0, 1, 4, 5], [2, 3]]


def test_batches_run_in_process_equal_run_trials_on_the_same_batches():
    data = train_subset(digits(), 300, 1)
    executor = TrialExecutor(max_batch_trials=2)
    results, _ = executor.run(MLP, data, plans(), TRAINING, CPU)
    by_batch = {}
    for batch in ([0, 1], [4, 5], [2, 3]):
        batch_results, _ = run_trials(MLP, data, [plans()[i] for i in batch], TRAINING, CPU)
        by_batch.update(zip(batch, batch_results))
    assert outcomes(results) == outcomes([by_batch[i] for i in range(6)])


def test_a_stored_batch_is_read_back_not_rerun(tmp_path):
    store = FileBatchStore(tmp_path / "batches")
    sources = TrialSources(DatasetSource(builtin="digits"))
    heard: list[tuple[str, int]] = []
    finished: list[int] = []
    first = TrialExecutor(sources, store, max_batch_trials=4, on_batch=lambda how, n: heard.append((how, n)))
    results, strategy = first.run(MLP, digits(), plans(), TRAINING, CPU)
    again, strategy_again = first.run(
        MLP, digits(), plans(), TRAINING, CPU, on_trial_finished=lambda i, r: finished.append(i)
    )
    assert heard == [("ran", 4), ("ran", 2), ("stored", 4), ("stored", 2)]
    assert dataclasses.asdict(again[0].outcome) == dataclasses.asdict(results[0].outcome)  # wall times too: stored
    assert strategy_again == strategy and sorted(finished) == list(range(6))
    assert len(list((tmp_path / "batches").rglob("*.json"))) == 2


def test_a_batch_from_its_json_form_equals_the_in_process_batch():
    """What a Ray worker computes from a batch's TrialBatch is what the local executor computes in process."""
    executor = TrialExecutor(TrialSources(DatasetSource(builtin="digits")))
    local, _ = executor.run(MLP, digits(), plans(), TRAINING, CPU)
    label_trials = [0, 1, 4, 5]
    work = executor._work(label_trials, plans(), MLP, TRAINING, None, False, None, "cpu")
    remote, _ = run_trial_batch(work.batch, CPU)
    assert outcomes(remote) == outcomes([local[i] for i in label_trials])
