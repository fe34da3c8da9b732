"""The unit of work of the randomization test and the memorisation search: a trial batch.

A trial batch is a pure function (architecture spec, dataset reference, trial list, training) →
trial results. `TrialBatch` is its JSON form: it names the data by reference (a built-in name, or a
file and its sha256, checked on load) and carries every seed, so any executor — this process, a
subprocess (`python -m effcap.capacity.analyses.trial_batch BATCH.json RESULTS.json`), a Ray task
on another machine — computes the same results from it on the same kind of device (on the CPU
bit for bit; CUDA trains in bf16), and results travel back as JSON too. Split a batch differently
and stacked trials agree only to float tolerance (about 1e-7: the stack's kernels sum in another
order), so an executor should run a batch whole. Executors are trusted:
the batch names files by path (their bytes are checked against their digests).
`run_trials` is the in-memory core; the analyses reach it through a trial executor (trial_executor.py),
which cuts their trials into batches the same way whichever executor runs them.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from effcap.capacity.checkpoint import load_checkpoint
from effcap.capacity.data.conditions import ConditionedData, apply_condition
from effcap.capacity.data.datasets import Dataset, builtin_dataset, load_dataset_file, subset_rows, train_subset
from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.device import pick_device
from effcap.capacity.engine.strategy import EngineOptions, Strategy, train_trials
from effcap.capacity.engine.trainer import EpochRecord, TrialOutcome
from effcap.capacity.errors import InputError
from effcap.capacity.models import ArchitectureSpec, check_fits_dataset, parse_architecture
from effcap.capacity.specs import Condition, ConditionKind, TrainingSpec


@dataclass(frozen=True)
class TrialPlan:
    condition: Condition
    seed_index: int
    seed: int
    # Train on this subset of the train split only (the memorisation scores: one subset per trial);
    # None: the whole split.
    subset: TrainSubset | None = None


@dataclass(frozen=True)
class TrialResult:
    plan: TrialPlan
    outcome: TrialOutcome
    labels_changed_fraction: float


LABEL_KINDS = frozenset({ConditionKind.TRUE_LABELS, ConditionKind.CORRUPT_LABELS, ConditionKind.RANDOM_LABELS})
EpochCallback = Callable[[int, dict[int, EpochRecord]], None]
FinishedCallback = Callable[[int, TrialResult], None]


def run_trials(
    architecture: ArchitectureSpec,
    dataset: Dataset,
    plans: list[TrialPlan],
    training: TrainingSpec,
    device: torch.device,
    init_state: dict[str, torch.Tensor] | None = None,
    engine: EngineOptions = EngineOptions(),
    on_epoch: EpochCallback | None = None,
    on_trial_finished: FinishedCallback | None = None,
    record_predictions: bool = False,
) -> tuple[list[TrialResult], str]:
    """Train every planned trial; results in plan order, and the strategy that trained them.

    Label conditions share the inputs on the device and pixel conditions carry their own, so each
    kind is trained as its own set of stacked trials (on an accelerator each set may be timed into a
    different strategy: then both are named, joined by "+"). Callbacks get indices into `plans`.
    `record_predictions` keeps each trained network's predicted labels on both splits in its outcome.
    """
    conditioned = [apply_condition(plan.condition, dataset, np.random.default_rng(plan.seed)) for plan in plans]
    shared = SharedData(*(torch.from_numpy(a).to(device) for a in (dataset.x_train, dataset.x_test, dataset.y_test)))
    inputs = [_trial_inputs(plan, data, device, len(dataset.x_train), record_predictions) for plan, data in zip(plans, conditioned)]
    outcomes: dict[int, TrialOutcome] = {}
    strategies: list[Strategy] = []

    def finished(index: int, outcome: TrialOutcome) -> None:
        if on_trial_finished is not None:
            on_trial_finished(index, TrialResult(plans[index], outcome, conditioned[index].labels_changed_fraction))

    for group in _groups(plans):
        group_outcomes, strategy = train_trials(
            architecture,
            shared,
            [inputs[i] for i in group],
            training,
            init_state,
            engine,
            on_epoch=None if on_epoch is None else lambda epoch, records, group=group: on_epoch(epoch, {group[i]: r for i, r in records.items()}),
            on_trial_finished=lambda i, outcome, group=group: finished(group[i], outcome),
        )
        outcomes.update(zip(group, group_outcomes))
        strategies.append(strategy)
    return [TrialResult(plan, outcomes[i], conditioned[i].labels_changed_fraction) for i, plan in enumerate(plans)], "+".join(dict.fromkeys(strategies))


def _groups(plans: list[TrialPlan]) -> list[list[int]]:
    """Trials that share the inputs (label conditions), then those with their own (pixel conditions)."""
    shared = [i for i, p in enumerate(plans) if p.condition.kind in LABEL_KINDS]
    own = [i for i, p in enumerate(plans) if p.condition.kind not in LABEL_KINDS]
    return [g for g in (shared, own) if g]


def _trial_inputs(plan: TrialPlan, data: ConditionedData, device: torch.device, train_examples: int, record_predictions: bool) -> TrialInputs:
    y = torch.from_numpy(data.y_train).to(device)
    rows = None
    if plan.subset is not None:
        if plan.condition.kind not in LABEL_KINDS:
            raise ValueError("a trial on a train subset must use a label condition (it trains on the shared inputs)")
        try:
            rows = torch.from_numpy(subset_rows(train_examples, plan.subset.size, plan.subset.seed)).to(device)
        except ValueError as error:
            raise InputError("batch.trials.subset.size", str(error), reason="SUBSET_TOO_LARGE") from None
    if plan.condition.kind in LABEL_KINDS:
        return TrialInputs(plan.seed, y, rows=rows, record_predictions=record_predictions)
    x_train, x_test = torch.from_numpy(data.x_train).to(device), torch.from_numpy(data.x_test).to(device)
    return TrialInputs(plan.seed, y, x_train, x_test, record_predictions=record_predictions)


class DatasetSource(BaseModel):
    """A built-in dataset by name, or a dataset file with the sha256 its bytes must have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    builtin: str | None = None
    path: str | None = None
    sha256: str | None = Field(None, pattern="^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSource:
        if (self.builtin is None) == (self.path is None):
            raise ValueError("give exactly one of builtin and path")
        if self.path is not None and self.sha256 is None:
            raise ValueError("a dataset file needs its sha256, so every executor checks it has the same bytes")
        return self


class CheckpointSource(BaseModel):
    """A safetensors checkpoint with the sha256 its bytes must have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class PlannedTrial(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    condition: Condition
    seed_index: int = Field(ge=0)
    seed: int = Field(ge=0, le=2**63 - 1)  # torch's seeds are signed 64-bit
    # This trial's own train subset (memorisation scores); None: the batch's train split.
    subset: TrainSubset | None = None


class TrainSubset(BaseModel):
    """Train on `size` examples of the train split drawn by `seed` (datasets.train_subset), as the
    memorisation analysis does; the test split stays whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(ge=1)
    seed: int = Field(ge=0, le=2**63 - 1)


class TrialBatch(BaseModel):
    """Everything a worker needs to run trials, as data: no live objects, no code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: dict[str, Any]
    dataset: DatasetSource
    training: TrainingSpec
    trials: list[PlannedTrial] = Field(min_length=1)
    # The checkpoint every trial starts from (init: checkpoint); None: fresh initialisations.
    init_checkpoint: CheckpointSource | None = None
    # None: the whole train split.
    train_subset: TrainSubset | None = None
    # Keep each trained network's predicted labels on both splits (the memorisation scores need them).
    record_predictions: bool = False


def run_trial_batch(batch: TrialBatch, device: torch.device, engine: EngineOptions = EngineOptions()) -> tuple[list[TrialResult], str]:
    """Load what the batch references (checking the dataset's digest), then run its trials."""
    architecture = parse_architecture(batch.architecture, "batch.architecture")
    dataset = _load_dataset(batch.dataset)
    if batch.train_subset is not None:
        dataset = _cut_train_split(dataset, batch.train_subset)
    check_fits_dataset(architecture, dataset.input_shape, dataset.num_classes)
    init_state = None
    if batch.init_checkpoint is not None:
        _check_digest(batch.init_checkpoint.path, batch.init_checkpoint.sha256, "batch.init_checkpoint.sha256")
        init_state = load_checkpoint(batch.init_checkpoint.path, batch.architecture, field="batch.init_checkpoint").state_dict
    plans = [TrialPlan(t.condition, t.seed_index, t.seed, t.subset) for t in batch.trials]
    return run_trials(architecture, dataset, plans, batch.training, device, init_state, engine, record_predictions=batch.record_predictions)


def _load_dataset(source: DatasetSource) -> Dataset:
    if source.builtin is not None:
        return builtin_dataset(source.builtin, field="batch.dataset.builtin")
    _check_digest(source.path, source.sha256, "batch.dataset.sha256")
    return load_dataset_file(source.path, name=f"sha256:{source.sha256}", field="batch.dataset")


def _cut_train_split(dataset: Dataset, subset: TrainSubset) -> Dataset:
    try:
        return train_subset(dataset, subset.size, subset.seed)
    except ValueError as error:  # the one check train_subset makes: the size fits the split
        raise InputError("batch.train_subset.size", str(error), reason="SUBSET_TOO_LARGE") from None


def _check_digest(path: str, sha256: str, field: str) -> None:
    """Every executor must read the same bytes the batch was planned with."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise InputError(field, f"{path} has sha256 {digest.hexdigest()}, not {sha256}", reason="DIGEST_MISMATCH")


def results_to_json(results: list[TrialResult], strategy: str) -> dict[str, Any]:
    return {
        "engine_strategy": strategy,
        "trials": [
            {
                "condition": r.plan.condition.model_dump(mode="json"),
                "seed_index": r.plan.seed_index,
                "seed": r.plan.seed,
                "subset": None if r.plan.subset is None else r.plan.subset.model_dump(mode="json"),
                "labels_changed_fraction": r.labels_changed_fraction,
                "outcome": dataclasses.asdict(r.outcome),
            }
            for r in results
        ],
    }


def results_from_json(obj: dict[str, Any]) -> tuple[list[TrialResult], str]:
    results = []
    for t in obj["trials"]:
        outcome = dict(t["outcome"])
        curve = [EpochRecord(**record) for record in outcome.pop("curve")]
        subset = None if t.get("subset") is None else TrainSubset.model_validate(t["subset"])
        plan = TrialPlan(Condition.model_validate(t["condition"]), t["seed_index"], t["seed"], subset)
        results.append(TrialResult(plan, TrialOutcome(**outcome, curve=curve), t["labels_changed_fraction"]))
    return results, obj["engine_strategy"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one trial batch (JSON) and write its results (JSON).")
    parser.add_argument("batch", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ...; default auto: CUDA when there is one")
    args = parser.parse_args(argv)
    batch = TrialBatch.model_validate_json(args.batch.read_text())
    results, strategy = run_trial_batch(batch, pick_device(args.device))
    args.results.write_text(json.dumps(results_to_json(results, strategy)))


if __name__ == "__main__":
    main()
