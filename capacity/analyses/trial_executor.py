"""Where an analysis' trials run: the analyses hand their trials to an executor instead of training them.

The executor cuts the trials into batches (batch_split.py, the same cut for every executor), looks each
batch up in a store of finished batches (a restarted audit does not retrain what it already trained), runs
the rest and reports each batch's trials as the batch finishes. `TrialExecutor` runs them in this process
with `run_trials`; a subclass (the Ray executor, service/executors/ray_executor.py) overrides `_run_batches`
to run them elsewhere from their JSON form (`TrialBatch`), which is why an executor is given `TrialSources`:
where the architecture, dataset and checkpoint of the audit can be found by a process that has none of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from effcap.capacity.analyses.batch_split import split_trials, trial_bytes
from effcap.capacity.analyses.trial_batch import (
    CheckpointSource,
    DatasetSource,
    EpochCallback,
    FinishedCallback,
    PlannedTrial,
    TrainSubset,
    TrialBatch,
    TrialPlan,
    TrialResult,
    results_from_json,
    results_to_json,
    run_trials,
)
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.strategy import EngineOptions
from effcap.capacity.models import ArchitectureSpec
from effcap.capacity.specs import TrainingSpec


class BatchStore(Protocol):
    """Finished batches' results JSON by the batch's key (service/executors/batch_store.py keeps them on disk)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, results: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class TrialSources:
    """The audit's inputs by reference: what a `TrialBatch` names instead of carrying tensors."""

    dataset: DatasetSource
    # The checkpoint the trials start from when the spec says init: checkpoint.
    checkpoint: CheckpointSource | None = None


@dataclass
class BatchWork:
    """One batch of one `run` call: its plans' indices, its JSON form and the key its results are stored by."""

    indices: list[int]
    batch: TrialBatch | None
    key: str | None
    results: list[TrialResult] = field(default_factory=list)
    strategy: str = ""


def batch_key(batch: TrialBatch, device_kind: str) -> str:
    """sha256 of what determines the batch's results: its JSON without file paths (files count by their
    digest, so a moved data directory still finds its batches) and the device kind (CUDA trains in bf16)."""
    content = batch.model_dump(mode="json")
    for source in ("dataset", "init_checkpoint"):
        if content.get(source) is not None:
            content[source] = {k: v for k, v in content[source].items() if k != "path"}
    text = json.dumps({"batch": content, "device_kind": device_kind}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class TrialExecutor:
    """Runs batches in this process (the audit's worker, or `effcap audit --local`), one after another."""

    def __init__(
        self,
        sources: TrialSources | None = None,
        store: BatchStore | None = None,
        max_batch_trials: int | None = None,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        """`max_batch_trials` caps a batch below what memory allows (more, smaller batches to spread);
        `on_batch(how, trials)` hears of each batch as it completes, `how` "ran" or "stored" (logs, tests)."""
        self._sources = sources
        self._store = store if sources is not None else None  # a batch is keyed by its sources
        self._max_batch_trials = max_batch_trials
        self._on_batch = on_batch

    def run(
        self,
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
        train_subset: TrainSubset | None = None,
    ) -> tuple[list[TrialResult], str]:
        """`run_trials`' contract, batch by batch: results in plan order, and the strategies that trained them.

        `dataset` is the data the trials train on; `train_subset` says how it was cut from the audit's
        dataset (memorization), so that a batch names it. Trials are reported when their batch finishes.
        """
        kind = self.device_kind(device.type)
        per_trial = trial_bytes(architecture, training.batch_size)
        cut = split_trials(plans, per_trial, kind, engine.max_trials_per_batch, self._max_batch_trials)
        works = [
            self._work(indices, plans, architecture, training, init_state, record_predictions, train_subset, kind)
            for indices in cut
        ]
        pending = []
        for work in works:
            stored = self._store.get(work.key) if self._store is not None and work.key is not None else None
            if stored is None:
                pending.append(work)
                continue
            work.results, work.strategy = results_from_json(stored)
            self._finished(work, plans, on_trial_finished, "stored")
        context = RunContext(
            architecture, dataset, plans, training, device, init_state, engine, on_epoch, record_predictions
        )
        for work in self._run_batches(pending, context):
            if self._store is not None and work.key is not None:
                self._store.put(work.key, results_to_json(work.results, work.strategy))
            self._finished(work, plans, on_trial_finished, "ran")
        results: dict[int, TrialResult] = {}
        for work in works:
            results.update(zip(work.indices, work.results))
        return [results[i] for i in range(len(plans))], "+".join(dict.fromkeys(w.strategy for w in works if w.strategy))

    def device_kind(self, local_kind: str) -> str:
        """The kind of device the batches train on ("cpu", "cuda"): this process's, unless they run elsewhere."""
        return local_kind

    def _run_batches(self, works: list[BatchWork], context: RunContext) -> Iterator[BatchWork]:
        """Run `works`, yielding each as it finishes (with results and strategy set)."""
        on_epoch = context.on_epoch
        for work in works:
            indices = work.indices
            results, work.strategy = run_trials(
                context.architecture,
                context.dataset,
                [context.plans[i] for i in indices],
                context.training,
                context.device,
                context.init_state,
                context.engine,
                on_epoch=None
                if on_epoch is None
                else lambda e, records, idx=indices: on_epoch(e, {idx[i]: r for i, r in records.items()}),
                record_predictions=context.record_predictions,
            )
            work.results = results
            yield work

    def _work(
        self,
        indices: list[int],
        plans: list[TrialPlan],
        architecture: ArchitectureSpec,
        training: TrainingSpec,
        init_state: dict[str, torch.Tensor] | None,
        record_predictions: bool,
        train_subset: TrainSubset | None,
        device_kind: str,
    ) -> BatchWork:
        if self._sources is None or (init_state is not None and self._sources.checkpoint is None):
            return BatchWork(indices, None, None)  # not expressible as a TrialBatch: run here, store nothing
        batch = TrialBatch(
            architecture=architecture.model_dump(mode="json"),
            dataset=self._sources.dataset,
            training=training,
            trials=[
                PlannedTrial(condition=p.condition, seed_index=p.seed_index, seed=p.seed, subset=p.subset)
                for p in (plans[i] for i in indices)
            ],
            init_checkpoint=self._sources.checkpoint if init_state is not None else None,
            train_subset=train_subset,
            record_predictions=record_predictions,
        )
        return BatchWork(indices, batch, batch_key(batch, device_kind))

    def _finished(
        self, work: BatchWork, plans: list[TrialPlan], on_trial_finished: FinishedCallback | None, how: str
    ) -> None:
        if self._on_batch is not None:
            self._on_batch(how, len(work.indices))
        if on_trial_finished is not None:
            for index, result in zip(work.indices, work.results):
                on_trial_finished(index, result)


@dataclass(frozen=True)
class RunContext:
    """One `run` call's in-memory inputs, for executors that train in this process."""

    architecture: ArchitectureSpec
    dataset: Dataset
    plans: list[TrialPlan]
    training: TrainingSpec
    device: torch.device
    init_state: dict[str, torch.Tensor] | None
    engine: EngineOptions
    on_epoch: EpochCallback | None
    record_predictions: bool
