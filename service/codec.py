"""Converting between the API's protobuf messages and the library's types.

Specs go proto -> pydantic (validation and defaults live in effcap.capacity.specs); results go
library dataclasses -> AuditReport proto. Nothing else in the service touches both worlds.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from effcap.capacity import specs
from effcap.capacity.analyses.compressibility import CompressibilityResult
from effcap.capacity.analyses.memorization import MemorizationResult
from effcap.capacity.analyses.rademacher import LOWER_ESTIMATE_NOTE, RademacherResult, RadiusEstimate
from effcap.capacity.analyses.randomization import ConditionSummary, RandomizationResult, Statistic
from effcap.capacity.analyses.trial_batch import TrialResult
from effcap.capacity.engine.trainer import EpochRecord
from effcap.capacity.errors import InputError
from effcap.capacity.graphs.onnx_model import OnnxProvenance
from effcap.capacity.graphs.spec import GraphSpec
from effcap.capacity.measures.bounds import Bound
from effcap.capacity.measures.rademacher import CONFIDENCE, Estimate
from effcap.capacity.measures.sharpness import TARGET_ACCURACY_DROP
from effcap.capacity.validation import validated
from effcap.protos.v1 import report_pb2, spec_pb2

_KIND_TO_PROTO = {kind: spec_pb2.ConditionKind.Value(f"CONDITION_KIND_{kind.name}") for kind in specs.ConditionKind}
_PROTO_TO_KIND = {v: k for k, v in _KIND_TO_PROTO.items()}
_INIT_TO_PROTO = {"reinit": spec_pb2.INIT_MODE_REINIT, "checkpoint": spec_pb2.INIT_MODE_CHECKPOINT}


# ---- specs: proto -> library ------------------------------------------------------------------

def audit_spec_from_proto(message: spec_pb2.AuditSpec) -> specs.AuditSpec:
    """Validate an AuditSpec message; InputError names the field (e.g. spec.randomization.training.batch_size)."""
    data: dict[str, Any] = {"seed": message.seed}
    if message.preset:
        data["preset"] = message.preset
    if message.HasField("architecture"):
        data["architecture"] = struct_to_dict(message.architecture)
    if message.HasField("randomization"):
        data["randomization"] = _randomization_dict(message.randomization)
    if message.HasField("memorization"):
        data["memorization"] = _set_fields(message.memorization)
    if message.HasField("rademacher"):
        data["rademacher"] = _set_fields(message.rademacher)
    if message.HasField("compressibility"):
        data["compressibility"] = _set_fields(message.compressibility)
    if message.HasField("memorization_scores"):
        data["memorization_scores"] = _set_fields(message.memorization_scores)
    if message.HasField("weights"):
        data["weights"] = {}
    return validated(specs.AuditSpec, data, "spec")


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct's plain value, non-finite numbers kept (json_format raises a ValueError that names no field),
    so that validation can name where they are."""

    def plain(value: struct_pb2.Value) -> Any:
        kind = value.WhichOneof("kind")
        if kind == "struct_value":
            return {key: plain(item) for key, item in value.struct_value.fields.items()}
        if kind == "list_value":
            return [plain(item) for item in value.list_value.values]
        return None if kind in (None, "null_value") else getattr(value, kind)

    return {key: plain(item) for key, item in message.fields.items()}


def _set_fields(message: Any) -> dict[str, Any]:
    """The fields a client set (proto3 `optional` presence), nested messages included."""
    def value(f: Any, v: Any) -> Any:
        if f.message_type is None:
            return list(v) if f.is_repeated else v
        return [_set_fields(item) for item in v] if f.is_repeated else _set_fields(v)

    return {f.name: value(f, v) for f, v in message.ListFields()}


def _randomization_dict(message: spec_pb2.RandomizationSpec) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if message.conditions:
        data["conditions"] = [_condition_dict(c, f"spec.randomization.conditions[{i}]") for i, c in enumerate(message.conditions)]
    if message.HasField("seeds_per_condition"):
        data["seeds_per_condition"] = message.seeds_per_condition
    if message.init != spec_pb2.INIT_MODE_UNSPECIFIED:
        if message.init not in _INIT_TO_PROTO.values():
            raise InputError("spec.randomization.init", f"{message.init} is not a known InitMode", reason="INVALID_SPEC")
        data["init"] = {v: k for k, v in _INIT_TO_PROTO.items()}[message.init]
    if message.HasField("training"):
        data["training"] = _set_fields(message.training)
    return data


def _condition_dict(message: spec_pb2.Condition, field: str) -> dict[str, Any]:
    if message.kind not in _PROTO_TO_KIND:
        raise InputError(f"{field}.kind", "must be set to a known condition kind", reason="INVALID_SPEC")
    return {"kind": _PROTO_TO_KIND[message.kind].value, "corruption": message.corruption}


# ---- specs: library -> proto (the resolved spec echoed in reports; clients building requests) ----

def audit_spec_to_proto(spec: specs.AuditSpec) -> spec_pb2.AuditSpec:
    message = spec_pb2.AuditSpec(seed=spec.seed, preset=spec.preset)
    if spec.architecture is not None:
        message.architecture.CopyFrom(dict_to_struct(spec.architecture))
    if spec.randomization is not None:
        r = spec.randomization
        message.randomization.CopyFrom(
            spec_pb2.RandomizationSpec(
                conditions=[condition_to_proto(c) for c in r.conditions],
                seeds_per_condition=r.seeds_per_condition,
                init=_INIT_TO_PROTO[r.init],
                training=spec_pb2.TrainingSpec(**r.training.model_dump()),
            )
        )
    if spec.memorization is not None:
        fields = spec.memorization.model_dump(exclude={"training"}, exclude_none=True)
        message.memorization.CopyFrom(spec_pb2.MemorizationSpec(**fields, training=spec_pb2.TrainingSpec(**spec.memorization.training.model_dump())))
    if spec.rademacher is not None:
        fields = spec.rademacher.model_dump(exclude={"training"})
        message.rademacher.CopyFrom(spec_pb2.RademacherSpec(**fields, training=spec_pb2.TrainingSpec(**spec.rademacher.training.model_dump())))
    if spec.compressibility is not None:
        fields = spec.compressibility.model_dump(exclude_none=True, exclude={"finetune"})
        message.compressibility.CopyFrom(
            spec_pb2.CompressibilitySpec(**fields, finetune=spec_pb2.TrainingSpec(**spec.compressibility.finetune.model_dump()))
        )
    if spec.memorization_scores is not None:
        fields = spec.memorization_scores.model_dump(exclude={"training"})
        training = spec_pb2.TrainingSpec(**spec.memorization_scores.training.model_dump())
        message.memorization_scores.CopyFrom(spec_pb2.MemorizationScoresSpec(**fields, training=training))
    if spec.weights is not None:
        message.weights.SetInParent()
    return message


def compressibility_to_proto(result: CompressibilityResult) -> report_pb2.CompressibilityReport:
    message = report_pb2.CompressibilityReport(
        eval_split=result.eval_split,
        baseline_accuracy=result.baseline_accuracy,
        baseline_train_accuracy=result.baseline_train_accuracy,
        tolerance=result.spec.tolerance,
        parameter_count=result.parameters,
        points=[
            report_pb2.CompressionPoint(
                method=p.method,
                level=p.level,
                accuracy=p.accuracy,
                loss=p.loss,
                train_accuracy=p.train_accuracy,
                train_loss=p.train_loss,
                nonzero_parameters=p.nonzero_parameters,
                compression_ratio=p.compression_ratio,
                theoretical_speedup=p.speedup,
                code_bits=p.code_bits,
                refined=p.refined,
                measured_speedup=p.measured_speedup,
            )
            for p in result.points
        ],
        methods=[
            report_pb2.MethodCompressibility(method=m, sparsity=s, compression_ratio=_ratio_at(result, m, s), train_sparsity=result.train_compressibility[m])
            for m, s in result.compressibility.items()
        ],
        sensitivities=[
            report_pb2.LayerSensitivity(layer=s.layer, sparsities=s.sparsities, accuracies=s.accuracies, integral=s.integral) for s in result.sensitivities
        ],
        ranks=[report_pb2.LayerRank(layer=r.layer, full_rank=r.full_rank, stable_rank=r.stable_rank, effective_rank=r.effective_rank) for r in result.ranks],
    )
    if result.bound is not None:
        b = result.bound
        message.bound.CopyFrom(
            report_pb2.OccamBoundReport(
                method=b.method,
                level=b.level,
                code_bits=b.code_bits,
                hyperparameter_bits=b.hyperparameter_bits,
                train_error=b.train_error,
                n=b.n,
                kl_bound=b.kl,
                catoni_bound=b.catoni,
                hoeffding_bound=b.hoeffding,
                delta=result.spec.delta,
                vacuous=b.vacuous,
            )
        )
    return message


def condition_to_proto(condition: specs.Condition) -> spec_pb2.Condition:
    return spec_pb2.Condition(kind=_KIND_TO_PROTO[condition.kind], corruption=condition.corruption)


def condition_to_proto_kind(kind: specs.ConditionKind) -> int:
    return _KIND_TO_PROTO[kind]


def onnx_import_to_proto(provenance: OnnxProvenance, graph: GraphSpec) -> report_pb2.OnnxImport:
    check = provenance.verification
    return report_pb2.OnnxImport(
        opset=provenance.opset,
        producer=provenance.producer,
        onnx_nodes=provenance.onnx_nodes,
        graph_nodes=len(graph.nodes),
        layers=sum(node.layer is not None for node in graph.nodes),
        export_batch_size=provenance.export_batch or 0,
        reference_evaluator=check.evaluator,
        examples_compared=check.examples,
        values_compared=check.values_compared,
        max_abs_difference=check.max_abs_difference,
        max_scaled_difference=check.max_scaled_difference,
    )


def dict_to_struct(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


# ---- results: library -> proto ------------------------------------------------------------------

# Learning-curve points a report aims for (about 25 bytes each; the 16-point floor can take it to
# 65,536 at the 4,096 trials a spec allows): a report must fit a gRPC message (8 MiB by default),
# and 64 conditions x 64 seeds x 100 epochs in full would take 10 MiB.
REPORT_CURVE_POINTS = 50_000
# Per trial, in a report and in a trial_finished event; never fewer than MIN_CURVE_POINTS.
MAX_CURVE_POINTS = 1_000
MIN_CURVE_POINTS = 16


def randomization_to_proto(result: RandomizationResult) -> report_pb2.RandomizationReport:
    training = result.spec.training
    trials = sum(len(c.trials) for c in result.conditions)
    per_trial = max(MIN_CURVE_POINTS, min(MAX_CURVE_POINTS, REPORT_CURVE_POINTS // max(trials, 1)))
    return report_pb2.RandomizationReport(
        fit_threshold=training.fit_threshold,
        max_epochs=training.max_epochs,
        steps_per_epoch=result.steps_per_epoch,
        test_labels_clean=True,
        conditions=[_condition_summary_to_proto(c, per_trial) for c in result.conditions],
        engine_strategy=result.engine_strategy,
        curve_points_per_trial=per_trial,
    )


def thin_curve(curve: list[EpochRecord], points: int) -> list[EpochRecord]:
    """At most `points` of a learning curve: the first, the last and evenly spaced ones between
    (the last is the fitting epoch when the trial fitted, since training stops there)."""
    if len(curve) <= points:
        return curve
    keep = sorted({round(i * (len(curve) - 1) / (points - 1)) for i in range(points)})
    return [curve[i] for i in keep]


def memorization_to_proto(result: MemorizationResult) -> report_pb2.MemorizationReport:
    return report_pb2.MemorizationReport(
        points=[
            report_pb2.SubsetFit(
                size=p.size, fitted_fraction=p.fitted_fraction, train_accuracy=_statistic(p.train_accuracy), steps_to_fit=_statistic(p.steps_to_fit)
            )
            for p in result.points
        ],
        largest_fitted_size=result.largest_fitted_size,
        reached_max_size=result.reached_max_size,
        capacity_bits=result.capacity_bits,
        bits_per_parameter=result.bits_per_parameter,
        parameter_count=result.parameter_count,
        num_classes=result.num_classes,
        fit_threshold=result.spec.training.fit_threshold,
        max_epochs=result.spec.training.max_epochs,
        engine_strategy=result.engine_strategy,
        budget_steps=result.budget_steps,
    )


def _estimate(e: Estimate) -> report_pb2.RademacherEstimate:
    return report_pb2.RademacherEstimate(mean=e.mean, ci_low=e.ci_low, ci_high=e.ci_high, draws=e.draws)


def _radius_points(points: list[RadiusEstimate]) -> list[report_pb2.RadiusPoint]:
    return [report_pb2.RadiusPoint(radius=p.radius, relative_radius=p.relative_radius, estimate=_estimate(p.estimate)) for p in points]


def bound_to_proto(b: Bound) -> report_pb2.BoundReport:
    message = report_pb2.BoundReport(
        name=b.name,
        vacuous=b.vacuous,
        inputs=b.inputs,
        reference=b.reference,
        bounds_on=b.bounds_on,
        fully_paid=b.fully_paid,
    )
    if b.value is not None:
        message.value = b.value
    return message


def rademacher_to_proto(result: RademacherResult) -> report_pb2.RademacherReport:
    norms = result.norms
    message = report_pb2.RademacherReport(
        examples=result.examples,
        confidence=CONFIDENCE,
        delta=result.spec.delta,
        local=_radius_points(result.local),
        local_per_layer=_radius_points(result.local_per_layer),
        layers=[
            report_pb2.LayerNorm(
                name=layer.name,
                kind=layer.kind,
                input_shape=list(layer.input_shape),
                spectral=layer.spectral,
                spectral_reshaped_kernel=layer.spectral_reshaped_kernel,
                frobenius=layer.frobenius,
                frobenius_kernel=layer.frobenius_kernel,
                l21_transpose=layer.l21_transpose,
                width=layer.width,
            )
            for layer in norms.layers
        ],
        spectral_product=norms.spectral_product,
        spectral_sum=norms.spectral_sum,
        frobenius_product=norms.frobenius_product,
        frobenius_sum_of_squares=norms.frobenius_sum_of_squares,
        parameter_norm=norms.parameter_norm,
        path_norm=norms.path_norm,
        margin=norms.margin.value,
        misclassified_fraction=norms.margin.misclassified_fraction,
        margin_valid=norms.margin.valid,
        bounds=[bound_to_proto(b) for b in result.bounds],
        note=LOWER_ESTIMATE_NOTE,
    )
    if result.global_estimate is not None:
        message.global_estimate.CopyFrom(_estimate(result.global_estimate))
        t = result.spec.training
        message.global_training = (
            f"each of {result.global_estimate.draws} draws trains a fresh two-logit network on {result.examples} "
            f"examples for up to {t.max_epochs} epochs (batch {t.batch_size}, learning rate {t.learning_rate:g}, "
            f"decay {t.lr_decay_per_epoch:g} per epoch); a budget too small to fit the signs lowers R̂"
        )
    if result.sharpness is not None and result.magnitude_aware_sharpness is not None:
        plain, magnitude = result.sharpness, result.magnitude_aware_sharpness
        message.sharpness.CopyFrom(
            report_pb2.SharpnessReport(
                sigma=plain.sigma,
                flatness=1 / plain.sigma**2 if plain.sigma else float("inf"),
                magnitude_aware_sigma=magnitude.sigma,
                magnitude_aware_flatness=1 / magnitude.sigma**2 if magnitude.sigma else float("inf"),
                target_accuracy_drop=TARGET_ACCURACY_DROP,
                forward_passes=plain.forward_passes + magnitude.forward_passes,
            )
        )
    if result.distance_from_init is not None:
        message.distance_from_init_frobenius = result.distance_from_init.frobenius
        message.distance_from_init_spectral = result.distance_from_init.spectral
    if result.ntk is not None:
        message.ntk.CopyFrom(report_pb2.NtkReport(examples=result.ntk.examples, true_labels=result.ntk.true_labels, random_labels=result.ntk.random_labels))
    message.generalization_measures.extend(
        report_pb2.GeneralizationMeasure(
            name=m.name, equation=m.equation, value=m.value, definition=m.definition, note=m.note
        )
        for m in result.generalization_measures
    )
    return message


def trial_to_proto(trial: TrialResult, curve_points: int = MAX_CURVE_POINTS) -> report_pb2.TrialResult:
    o = trial.outcome
    return report_pb2.TrialResult(
        condition=condition_to_proto(trial.plan.condition),
        seed_index=trial.plan.seed_index,
        seed=trial.plan.seed,
        train_accuracy=o.train_accuracy,
        test_accuracy=o.test_accuracy,
        train_loss=o.train_loss,
        fitted=o.fitted,
        steps_to_fit=o.steps_to_fit,
        epochs_to_fit=o.epochs_to_fit,
        seconds_to_fit=o.seconds_to_fit,
        steps_run=o.steps_run,
        seconds_run=o.seconds_run,
        labels_changed_fraction=trial.labels_changed_fraction,
        curve=[report_pb2.CurvePoint(step=p.step, epoch=p.epoch, train_loss=p.train_loss, train_accuracy=p.train_accuracy) for p in thin_curve(o.curve, curve_points)],
    )


def _statistic(s: Statistic) -> report_pb2.Statistic:
    return report_pb2.Statistic(mean=s.mean, std=s.std, count=s.count)


def _condition_summary_to_proto(c: ConditionSummary, curve_points: int) -> report_pb2.ConditionResult:
    message = report_pb2.ConditionResult(
        condition=condition_to_proto(c.condition),
        label=c.condition.label,
        trials=[trial_to_proto(t, curve_points) for t in c.trials],
        train_accuracy=_statistic(c.train_accuracy),
        test_accuracy=_statistic(c.test_accuracy),
        steps_to_fit=_statistic(c.steps_to_fit),
        seconds_to_fit=_statistic(c.seconds_to_fit),
        fitted_fraction=c.fitted_fraction,
        generalization_gap=c.generalization_gap,
    )
    if c.slowdown_vs_true is not None:
        message.slowdown_vs_true = c.slowdown_vs_true
    if c.slowdown_lower_bound is not None:
        message.slowdown_lower_bound = c.slowdown_lower_bound
    return message


def _ratio_at(result: CompressibilityResult, method: str, level: float) -> float:
    """The measured ratio of the point at s* (structured pruning removes about 1 − (1 − s)² of the
    weights, so 1/(1 − s) would understate it); 1 when nothing could be removed."""
    return next((p.compression_ratio for p in result.points if p.method == method and p.level == level), 1.0)
