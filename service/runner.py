"""Running one audit from its inputs to its report: the code the worker process executes.

`effcap audit --local` calls the same `run_audit`, so a local run and a server run of the same
inputs and seed produce the same numbers.
"""

from __future__ import annotations

import platform
import time
from collections import Counter
from dataclasses import dataclass
from importlib import metadata

import torch

from effcap.capacity.analyses.compressibility import CompressibilityResult, run_compressibility
from effcap.capacity.analyses.learning_rate_probe import probe_learning_rate
from effcap.capacity.analyses.memorization import run_memorization
from effcap.capacity.analyses.memorization_scores import run_memorization_scores
from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.analyses.rademacher import run_rademacher
from effcap.capacity.analyses.randomization import run_randomization_test
from effcap.capacity.analyses.trial_batch import CheckpointSource, DatasetSource, TrialResult
from effcap.capacity.analyses.trial_executor import TrialSources
from effcap.capacity.analyses.weights import run_weights
from effcap.capacity.checkpoint import Checkpoint, load_checkpoint
from effcap.capacity.checkpoint_accuracy import checkpoint_test_accuracy
from effcap.capacity.compression.structured import check_structured_supported
from effcap.capacity.data.datasets import Dataset, builtin_dataset, load_dataset_file
from effcap.capacity.engine.device import describe_device, pick_device
from effcap.capacity.errors import InputError
from effcap.capacity.graphs.spec import GraphSpec
from effcap.capacity.measures.rademacher import check_two_logit_head
from effcap.capacity.models import ArchitectureSpec, build_model, check_fits_dataset, count_parameters
from effcap.capacity.presets import apply_preset, needs_learning_rate_probe, with_learning_rate
from effcap.capacity.specs import ANALYSES, AuditSpec, ConditionKind
from effcap.protos.v1 import report_pb2
from effcap.service import codec, memorization_scores_report, weights_report
from effcap.service.audit_job import AuditJob
from effcap.service.compressibility_headline import set_compressibility_headline
from effcap.service.executors.config import ExecutorConfig
from effcap.service.executors.factory import make_executor
from effcap.service.executors.threads import ThreadPlan, wait_policy
from effcap.service.progress import ProgressSink


@dataclass(frozen=True)
class AuditInputs:
    spec: AuditSpec
    checkpoint: Checkpoint
    # None only for an audit of data-free analyses (weights) sent without a dataset.
    dataset: Dataset | None
    initial_state: dict | None = None


def load_inputs(job: AuditJob) -> AuditInputs:
    """Parse and cross-check spec, checkpoint and dataset; raises InputError naming the field."""
    spec = codec.audit_spec_from_proto(job.spec)
    checkpoint = load_checkpoint(job.model_path, spec.architecture, onnx_limits=job.onnx_limits)
    dataset = None
    if job.dataset_path is not None:
        dataset = load_dataset_file(job.dataset_path, name=f"sha256:{job.dataset.artifact.sha256}")
    elif job.dataset.WhichOneof("source") is not None:
        dataset = builtin_dataset(job.dataset.builtin)
    elif spec.needs_data:
        what = "an uploaded artifact digest or a built-in name (only the weights analysis runs without data)"
        raise InputError("dataset", f"is required: {what}", reason="FIELD_REQUIRED")
    if dataset is not None:
        check_fits_dataset(checkpoint.architecture, dataset.input_shape, dataset.num_classes)
    if spec.compressibility is not None:
        check_structured_supported(checkpoint.architecture, list(spec.compressibility.methods))
    if spec.rademacher is not None and spec.rademacher.fit_signs:
        check_two_logit_head(checkpoint.architecture)
    initial_state = None
    if job.initial_model_path is not None:
        # Same architecture as the checkpoint: its tensors are checked against it.
        architecture = checkpoint.architecture.model_dump(mode="json")
        initial = load_checkpoint(job.initial_model_path, architecture, "initial_model", onnx_limits=job.onnx_limits)
        initial_state = initial.state_dict
    return AuditInputs(spec, checkpoint, dataset, initial_state)


def run_audit(job: AuditJob, sink: ProgressSink, threads: ThreadPlan | None = None) -> report_pb2.AuditReport:
    """Run every analysis the spec asks for; `threads` is the thread plan this process was set up with."""
    inputs = load_inputs(job)
    device = pick_device(job.device)
    architecture = inputs.checkpoint.architecture
    train_examples = len(inputs.dataset.x_train) if inputs.dataset is not None else 0  # None: data-free analyses only
    spec, defaults_chosen = apply_preset(inputs.spec, train_examples)
    if needs_learning_rate_probe(spec):
        sink.progress("randomization: probing learning rates on true labels", 0, 0, 0.0)
        init_state = inputs.checkpoint.state_dict if spec.randomization.init == "checkpoint" else None
        probe = probe_learning_rate(architecture, inputs.dataset, spec.randomization.training, spec.seed, device, init_state)
        spec = with_learning_rate(spec, probe.learning_rate)
        defaults_chosen.append(f"randomization: {probe.describe()}")
    report = report_pb2.AuditReport(audit=job.audit, spec=codec.audit_spec_to_proto(spec), defaults_chosen=defaults_chosen)
    report.model.CopyFrom(_model_info(job, inputs))
    if inputs.dataset is not None:
        own_accuracy = checkpoint_test_accuracy(architecture, inputs.checkpoint.state_dict, inputs.dataset, device)
        if own_accuracy is not None:
            report.model.checkpoint_test_accuracy = own_accuracy
        report.dataset.CopyFrom(_dataset_info(job, inputs.dataset))
    report.environment.CopyFrom(_environment(device, threads, job.executor))
    if inputs.checkpoint.onnx is not None:
        report.warnings.extend(f"onnx: {note}" for note in inputs.checkpoint.onnx.notes)
    if inputs.dataset is not None and inputs.dataset.test_split_held_out:
        report.warnings.append("the dataset has no test split: 20% of the train split was held out as test data")
    analyses = [name for name in ANALYSES if getattr(spec, name) is not None]
    executor = make_executor(job.executor, job.device, trial_sources(job)) if inputs.dataset is not None else None
    for position, name in enumerate(analyses):
        progress = _ProgressAdapter(sink, position, len(analyses))
        if name == "randomization":
            result = run_randomization_test(
                architecture,
                inputs.dataset,
                spec.randomization,
                spec.seed,
                device,
                inputs.checkpoint.state_dict,
                progress,
                executor=executor,
            )
            report.randomization.CopyFrom(codec.randomization_to_proto(result))
            report.warnings.extend(_randomization_warnings(report.randomization, spec))
        elif name == "memorization":
            memorization = run_memorization(
                architecture, inputs.dataset, spec.memorization, spec.seed, device, progress, executor=executor
            )
            report.memorization.CopyFrom(codec.memorization_to_proto(memorization))
            report.warnings.extend(_memorization_warnings(report.memorization, spec.memorization.min_subset_size))
        elif name == "memorization_scores":
            scores = run_memorization_scores(
                architecture, inputs.dataset, spec.memorization_scores, spec.seed, device, progress, executor=executor
            )
            report.memorization_scores.CopyFrom(memorization_scores_report.memorization_scores_to_proto(scores, inputs.dataset))
            report.warnings.extend(memorization_scores_report.warnings(report.memorization_scores))
        elif name == "weights":
            spectra = run_weights(architecture, inputs.checkpoint.state_dict, progress)
            report.weights.CopyFrom(weights_report.weights_to_proto(spectra))
            report.warnings.extend(weights_report.warnings(report.weights))
        elif name == "compressibility":
            compression = run_compressibility(architecture, inputs.checkpoint.state_dict, inputs.dataset, spec.compressibility, spec.seed, device, progress)
            report.compressibility.CopyFrom(codec.compressibility_to_proto(compression))
            report.warnings.extend(_compressibility_warnings(compression))
        else:
            rademacher = run_rademacher(
                architecture, inputs.checkpoint.state_dict, inputs.dataset, spec.rademacher, spec.seed, device, progress, initial_state=inputs.initial_state
            )
            report.rademacher.CopyFrom(codec.rademacher_to_proto(rademacher))
            if not report.rademacher.margin_valid:
                report.warnings.append(
                    f"rademacher: {100 * report.rademacher.misclassified_fraction:.1f}% of training examples are misclassified by the checkpoint, "
                    "so its 10th-percentile margin is not positive and no margin bound applies"
                )
    report.card.CopyFrom(_capacity_card(report))
    return report


def trial_sources(job: AuditJob) -> TrialSources:
    """The audit's dataset and checkpoint as a trial batch names them: by path and sha256 (or built-in name).

    Paths are absolute: a Ray worker does not share the server's working directory (`--data-dir` may be relative).
    """
    if job.dataset_path is not None:
        dataset = DatasetSource(path=str(job.dataset_path.resolve()), sha256=job.dataset.artifact.sha256)
    else:
        dataset = DatasetSource(builtin=job.dataset.builtin)
    checkpoint = None
    if job.model_digest is not None and job.model_digest.sha256:
        checkpoint = CheckpointSource(path=str(job.model_path.resolve()), sha256=job.model_digest.sha256)
    return TrialSources(dataset, checkpoint)


class _ProgressAdapter(AnalysisProgress):
    """Turns one analysis' progress into the audit's, at most a few events per second.

    Analysis `position` of `count` covers [position/count, (position+1)/count] of the audit.
    """

    MIN_INTERVAL_S = 0.5

    def __init__(self, sink: ProgressSink, position: int, count: int) -> None:
        self._sink = sink
        self._position = position
        self._count = count
        self._last_sent = 0.0

    def _overall(self, fraction: float) -> float:
        return (self._position + fraction) / self._count

    def update(self, stage: str, done: int, total: int, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last_sent < self.MIN_INTERVAL_S and done < total:
            return
        self._last_sent = now
        self._sink.progress(stage, done, total, self._overall(fraction))

    def trial_finished(self, result: TrialResult) -> None:
        self._sink.trial_finished(codec.trial_to_proto(result))


def _model_info(job: AuditJob, inputs: AuditInputs) -> report_pb2.ModelInfo:
    architecture = inputs.checkpoint.architecture
    info = report_pb2.ModelInfo(
        family=architecture.family,
        parameter_count=count_parameters(build_model(architecture, device="meta")),
        input_shape=list(architecture.input_shape),
        num_classes=architecture.num_classes,
    )
    info.architecture.CopyFrom(codec.dict_to_struct(_architecture_summary(architecture)))
    if job.model_digest is not None:
        info.digest.CopyFrom(job.model_digest)
    if inputs.checkpoint.onnx is not None:
        info.onnx.CopyFrom(codec.onnx_import_to_proto(inputs.checkpoint.onnx, architecture))
    return info


def _architecture_summary(architecture: ArchitectureSpec) -> dict:
    """The spec as the report shows it; a graph by its outline (its full spec, constants and all, can be megabytes)."""
    if not isinstance(architecture, GraphSpec):
        return architecture.model_dump(mode="json")
    operators = Counter(node.op for node in architecture.nodes)
    return {
        "family": "graph",
        "input_shape": list(architecture.input_shape),
        "num_classes": architecture.num_classes,
        "nodes": len(architecture.nodes),
        "operators": dict(operators.most_common()),
        "layers": [node.layer for node in architecture.nodes if node.layer is not None][:200],
    }


def _dataset_info(job: AuditJob, dataset: Dataset) -> report_pb2.DatasetInfo:
    return report_pb2.DatasetInfo(
        source=job.dataset,
        train_examples=len(dataset.x_train),
        test_examples=len(dataset.x_test),
        num_classes=dataset.num_classes,
        input_shape=list(dataset.input_shape),
    )


def _environment(device: torch.device, threads: ThreadPlan | None, executor: ExecutorConfig) -> report_pb2.Environment:
    """Where the audit ran; with the Ray executor the trials trained in Ray tasks, so their threads are named too."""
    source = (
        f"{threads.source if threads is not None else 'set by the caller'}; "
        f"{threads.waits if threads is not None and threads.waits else wait_policy()}"
    )
    if executor.kind == "ray":
        source += (
            f"; trial batches trained in Ray tasks ({executor.ray_address or 'auto'}) of {executor.ray_task_cpus} "
            f"CPU(s) and as many torch threads each on the CPU, or one GPU each (--ray-task-cpus)"
        )
    return report_pb2.Environment(
        effcap_version=metadata.version("effcap"),
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        device=describe_device(device),
        cpu_threads=torch.get_num_threads(),
        cpu_threads_source=source,
    )


def _randomization_warnings(report: report_pb2.RandomizationReport, spec: AuditSpec) -> list[str]:
    return [
        f"{c.label}: {round((1 - c.fitted_fraction) * len(c.trials))} of {len(c.trials)} trials did not reach train accuracy "
        f"{report.fit_threshold:g} within {report.max_epochs} epochs; failing to fit is a lower estimate of capacity, not a proof. "
        f"{unfitted_advice(spec, report.steps_per_epoch)}"
        for c in report.conditions
        if c.fitted_fraction < 1
    ]


def unfitted_advice(spec: AuditSpec, steps_per_epoch: int) -> str:
    """What to change, with the CLI flags (and spec fields), when randomization trials ran out of budget."""
    training = spec.randomization.training
    epochs = training.max_epochs
    advice = [f"--epochs {2 * epochs} (now {epochs} = {epochs * steps_per_epoch} SGD steps; spec.randomization.training.max_epochs)"]
    if training.lr_decay_per_epoch < 1:
        left = training.lr_decay_per_epoch**epochs
        advice.append(f"--lr-decay 1 (now {training.lr_decay_per_epoch:.4g} per epoch, which leaves {left:.2g} of the rate at the end)")
    advice.append(f"a larger --lr (now {training.learning_rate:g})")
    if spec.preset == "paper":
        advice.append("or --preset standard (a schedule counted in SGD steps, a probed learning rate)")
    return "To fit, try " + ", ".join(advice)


def _memorization_warnings(report: report_pb2.MemorizationReport, min_subset_size: int) -> list[str]:
    if report.reached_max_size:
        return [
            f"memorization: every subset up to {report.largest_fitted_size} examples was fitted, so the capacity is at least "
            f"{report.capacity_bits:.0f} bits; more data would be needed to find its limit"
        ]
    if report.largest_fitted_size < min_subset_size:
        return [
            f"memorization: the first subset size tried was not fitted within {report.budget_steps} SGD steps and m* = "
            f"{report.largest_fitted_size} was found below it; check the budget and learning rate before reading it as the architecture's capacity"
        ]
    return []


def _compressibility_warnings(result: CompressibilityResult) -> list[str]:
    warnings = []
    if result.eval_split == "train":
        warnings.append("compressibility: the dataset has no test split, so accuracy under compression is measured on the train split")
    if not result.n_from_spec:
        warnings.append(
            f"compressibility: the bound assumes the model was trained on the audit's {result.bound.n if result.bound else 0} train examples; "
            "name the real number in spec.compressibility.train_set_size"
        )
    return warnings


def _capacity_card(report: report_pb2.AuditReport) -> report_pb2.CapacityCard:
    card = report_pb2.CapacityCard(chance_accuracy=1.0 / (report.dataset.num_classes or report.model.num_classes))
    by_kind = {c.condition.kind: c for c in report.randomization.conditions}
    random_labels = by_kind.get(codec.condition_to_proto_kind(ConditionKind.RANDOM_LABELS))
    true_labels = by_kind.get(codec.condition_to_proto_kind(ConditionKind.TRUE_LABELS))
    if random_labels is not None:
        card.random_labels_train_accuracy = random_labels.train_accuracy.mean
        card.random_labels_test_accuracy = random_labels.test_accuracy.mean
        if random_labels.HasField("slowdown_vs_true"):
            card.random_labels_slowdown = random_labels.slowdown_vs_true
    if true_labels is not None:
        card.true_labels_test_accuracy = true_labels.test_accuracy.mean
    bounds: list[report_pb2.BoundReport] = []
    if report.HasField("rademacher"):
        r = report.rademacher
        if r.HasField("global_estimate"):
            card.rademacher.CopyFrom(r.global_estimate)
        bounds.extend(r.bounds)
    if report.HasField("compressibility"):
        c = report.compressibility
        set_compressibility_headline(card, c)
        if c.HasField("bound"):
            b = c.bound
            bounds.append(
                report_pb2.BoundReport(
                    name=f"occam_kl ({b.method} at {b.level:g})",
                    value=b.kl_bound,
                    vacuous=b.vacuous,
                    inputs=f"{b.code_bits:.0f} bits, n = {b.n}",
                    bounds_on=f"the model compressed by {b.method} at {b.level:g}",
                    fully_paid=True,
                )
            )
    bounds = [b for b in bounds if b.fully_paid]  # values with omitted constants or lower estimates are no bounds
    card.bounds_computed = len(bounds)
    card.bounds_vacuous = sum(b.vacuous for b in bounds)
    useful = [b for b in bounds if not b.vacuous]
    if useful:
        card.tightest_bound.CopyFrom(min(useful, key=lambda b: b.value))
    if report.HasField("memorization"):
        card.memorized_examples = report.memorization.largest_fitted_size
        card.memorization_bits = report.memorization.capacity_bits
        card.memorization_bits_per_parameter = report.memorization.bits_per_parameter
    return card
