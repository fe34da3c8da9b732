"""Rendering an AuditReport for a terminal: capacity card, conditions table, warnings."""

from __future__ import annotations

from google.protobuf import json_format
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from effcap.clients import generalization_view, memorization_scores_view, weights_view
from effcap.clients.card import bound_status, card_lines
from effcap.clients.console import output_console
from effcap.clients.defaults_view import settings_lines
from effcap.clients.formatting import (
    COMPRESSION_COLUMNS,
    best_within_tolerance,
    compression_row,
    dataset_summary,
    device_summary,
    mean_std,
    memorization_summary,
    onnx_summary,
    randomization_protocol,
    slowdown,
)
from effcap.protos.v1 import report_pb2


def report_json(report: report_pb2.AuditReport) -> str:
    """The protobuf JSON mapping (lowerCamelCase field names, enums by name)."""
    return json_format.MessageToJson(report, indent=2, sort_keys=True)




def capacity_card(report: report_pb2.AuditReport) -> Panel:
    # Text, not markup; fitted to its lines rather than stretched to a wide non-terminal console.
    return Panel(Text("\n".join(card_lines(report))), title="capacity card", box=box.ROUNDED, expand=False)


def randomization_table(section: report_pb2.RandomizationReport) -> Table:
    table = Table(
        title=f"Randomization test. {randomization_protocol(section)}.",
        box=box.SIMPLE_HEAD,
    )
    for column in ("condition", "train acc", "test acc", "fitted", "steps to fit", "slowdown", "gap (pts)"):
        table.add_column(column, justify="left" if column == "condition" else "right", no_wrap=True)
    for c in section.conditions:
        table.add_row(
            c.label,
            mean_std(c.train_accuracy),
            mean_std(c.test_accuracy),
            f"{round(c.fitted_fraction * len(c.trials))}/{len(c.trials)}",
            mean_std(c.steps_to_fit, fmt=lambda v: f"{v:.0f}"),
            slowdown(c),
            f"{100 * c.generalization_gap:+.1f}",
        )
    return table


def memorization_table(section: report_pb2.MemorizationReport) -> Table:
    table = Table(title=f"Memorisation capacity: {memorization_summary(section)}", box=box.SIMPLE_HEAD)
    for column in ("subset size", "fitted", "train acc", "steps to fit"):
        table.add_column(column, justify="right")
    for p in section.points:
        table.add_row(str(p.size), f"{100 * p.fitted_fraction:.0f}%", mean_std(p.train_accuracy), mean_std(p.steps_to_fit, fmt=lambda v: f"{v:.0f}"))
    return table


def rademacher_tables(section: report_pb2.RademacherReport) -> list[Table]:
    estimates = Table(title=f"Rademacher complexity on {section.examples} training examples ({100 * section.confidence:.0f}% intervals; lower estimates)", box=box.SIMPLE_HEAD)
    for column in ("hypothesis class", "R̂", "interval"):
        estimates.add_column(column, justify="left" if column == "hypothesis class" else "right")
    if section.HasField("global_estimate"):
        g = section.global_estimate
        label = f"sign classifiers (fitted signs; {section.global_training})"
        estimates.add_row(label, f"{g.mean:.4g}", f"[{g.ci_low:.4g}, {g.ci_high:.4g}]")
    for p in section.local:
        e = p.estimate
        estimates.add_row(f"ball ‖w − w₀‖ ≤ {p.relative_radius:g}·‖w₀‖", f"{e.mean:.4g}", f"[{e.ci_low:.4g}, {e.ci_high:.4g}]")
    for p in section.local_per_layer:
        e = p.estimate
        estimates.add_row(f"layer-wise balls ‖W − W₀‖_F ≤ {p.relative_radius:g}·‖W₀‖_F", f"{e.mean:.4g}", f"[{e.ci_low:.4g}, {e.ci_high:.4g}]")
    if section.HasField("distance_from_init_frobenius"):
        estimates.add_row(
            "distance from initialisation", f"‖w − w_init‖ = {section.distance_from_init_frobenius:.4g}", f"Σσ(W − W_init) = {section.distance_from_init_spectral:.4g}"
        )
    margin = f"{section.margin:.4g}" if section.margin_valid else f"not positive ({100 * section.misclassified_fraction:.1f}% misclassified)"
    bounds = Table(
        title=f"Norms (BatchNorm folded): Πσ = {section.spectral_product:.4g}, Π‖W‖_F = {section.frobenius_product:.4g}, path norm {section.path_norm:.4g}, "
        f"‖w‖ = {section.parameter_norm:.4g}, margin γ = {margin}",
        box=box.SIMPLE_HEAD,
    )
    for column in (f"bound (δ = {section.delta:g})", "test error ≤", "vacuous", "what it is"):
        bounds.add_column(column, justify="right" if column in ("test error ≤", "vacuous") else "left")
    for b in section.bounds:
        value = f"{b.value:.4g}" if b.HasField("value") else "n/a"
        bounds.add_row(b.name, value, "yes" if b.vacuous else "no", bound_status(b))
    if section.HasField("sharpness"):
        s = section.sharpness
        estimates.add_row(f"sharpness σ (accuracy drop {s.target_accuracy_drop:g})", f"{s.sigma:.4g}", f"σ′ = {s.magnitude_aware_sigma:.4g}")
    if section.HasField("ntk"):
        k = section.ntk
        estimates.add_row(f"NTK complexity at init, {k.examples} examples", f"true {k.true_labels:.4g}", f"random {k.random_labels:.4g}")
    if not section.generalization_measures:
        return [estimates, bounds]
    measures = Table(title=generalization_view.TITLE, box=box.SIMPLE_HEAD)
    for column in generalization_view.COLUMNS:
        measures.add_column(column, justify="right" if column == "value" else "left")
    for row in generalization_view.measure_rows(section):
        measures.add_row(*row)
    return [estimates, bounds, measures]


def compressibility_tables(section: report_pb2.CompressibilityReport) -> list[Table]:
    methods = Table(
        title=f"Compressibility (one-shot; {section.eval_split} accuracy {100 * section.baseline_accuracy:.1f}%, tolerance {100 * section.tolerance:g} point(s))",
        box=box.SIMPLE_HEAD,
    )
    for column in ("method", "s*", "ratio", "s* (train)"):
        methods.add_column(column, justify="left" if column == "method" else "right")
    for m in section.methods:
        methods.add_row(m.method, f"{100 * m.sparsity:.1f}%", f"{m.compression_ratio:.1f}×", f"{100 * m.train_sparsity:.1f}%")
    tables = [methods]
    others = best_within_tolerance(section)
    if others:
        table = Table(title="Quantisation and low rank: the shortest code within tolerance", box=box.SIMPLE_HEAD)
        for column in COMPRESSION_COLUMNS:
            table.add_column(column, justify="left" if column == "method" else "right")
        for method, point in others:
            table.add_row(*compression_row(section, method, point))
        tables.append(table)
    if section.HasField("bound"):
        b = section.bound
        bound = Table(title=f"Compression bound (δ = {b.delta:g}): {b.method} at {b.level:g}, {b.code_bits:,.0f} bits, n = {b.n}, train error {b.train_error:.4f}", box=box.SIMPLE_HEAD)
        for column in ("form", "test error ≤"):
            bound.add_column(column, justify="left" if column == "form" else "right")
        bound.add_row("kl", f"{b.kl_bound:.4f}{' (vacuous)' if b.vacuous else ''}")
        bound.add_row("Catoni", f"{b.catoni_bound:.4f}")
        bound.add_row("Hoeffding (reference)", f"{b.hoeffding_bound:.4f}")
        tables.append(bound)
    return tables


def render_report(report: report_pb2.AuditReport) -> Group:
    model, data = report.model, report.dataset
    header = Text.from_markup(
        f"[b]effcap audit[/b] {report.audit or '(local)'}\n"
        f"model: {model.family}, {model.parameter_count:,} parameters, input {list(model.input_shape)}, {model.num_classes} classes"
        + (f", sha256:{model.digest.sha256[:12]}" if model.digest.sha256 else "")
        + (f"\n{onnx_summary(model)}" if model.HasField("onnx") else "")
        + f"\ndata: {dataset_summary(data)}\n"
        f"seed {report.spec.seed}; effcap {report.environment.effcap_version}, torch {report.environment.torch_version}, {device_summary(report.environment)}"
    )
    parts: list = [header, Text("\n".join(settings_lines(report)), style="dim"), capacity_card(report)]
    if report.HasField("randomization"):
        parts.append(randomization_table(report.randomization))
    if report.HasField("memorization"):
        parts.append(memorization_table(report.memorization))
    if report.HasField("rademacher"):
        parts.extend(rademacher_tables(report.rademacher))
    if report.HasField("compressibility"):
        parts.extend(compressibility_tables(report.compressibility))
    if report.HasField("memorization_scores"):
        parts.extend(memorization_scores_view.terminal_tables(report.memorization_scores))
    if report.HasField("weights"):
        parts.extend(weights_view.terminal_tables(report.weights))
    for warning in report.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return Group(*parts)


def print_report(report: report_pb2.AuditReport, console: Console | None = None) -> None:
    (console or output_console()).print(render_report(report))
