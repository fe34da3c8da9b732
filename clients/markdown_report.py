"""Markdown rendering of a report: for pull-request comments and CI step summaries."""

from __future__ import annotations

from effcap.clients import generalization_view, memorization_scores_view, weights_view
from effcap.clients.card import bound_status, card_lines, label_conditions
from effcap.clients.defaults_view import settings_lines
from effcap.clients.formatting import (
    COMPRESSION_COLUMNS,
    PUBLISHED_BITS_PER_PARAMETER,
    best_within_tolerance,
    compression_row,
    dataset_summary,
    device_summary,
    mean_std,
    memorization_summary,
    onnx_summary,
    percent,
    randomization_protocol,
    slowdown,
)
from effcap.protos.v1 import report_pb2


def report_markdown(report: report_pb2.AuditReport) -> str:
    model, data = report.model, report.dataset
    out = [
        f"## effcap audit {report.audit or '(local)'}",
        "",
        f"**Model** {model.family}, {model.parameter_count:,} parameters, input {list(model.input_shape)}"
        + (f", `sha256:{model.digest.sha256[:12]}`" if model.digest.sha256 else "")
        + (f"  \n{onnx_summary(model)}" if model.HasField("onnx") else "")
        + f"  \n**Data** {dataset_summary(data)}  \n"
        f"**Seed** {report.spec.seed} · effcap {report.environment.effcap_version} · torch {report.environment.torch_version} · {device_summary(report.environment)}",
        "",
        *[f"- {line}" for line in settings_lines(report)],
        "",
        "### Capacity card",
        "",
        *[f"- {line}" for line in card_lines(report)],
    ]
    if report.HasField("randomization"):
        r = report.randomization
        out += [
            "",
            "### Randomization test",
            "",
            f"{randomization_protocol(r)}.",
            "",
            "| condition | train acc | test acc | fitted | steps to fit | slowdown | gap (pts) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for c in r.conditions:
            fitted = f"{round(c.fitted_fraction * len(c.trials))}/{len(c.trials)}"
            steps = mean_std(c.steps_to_fit, fmt=lambda v: f"{v:.0f}")
            out.append(f"| {c.label} | {mean_std(c.train_accuracy)} | {mean_std(c.test_accuracy)} | {fitted} | {steps} | {slowdown(c)} | {100 * c.generalization_gap:+.1f} |")
        by_corruption = label_conditions(r)
        if len(by_corruption) > 1:
            points = ", ".join(f"p = {x:g}: {percent(1 - c.test_accuracy.mean)}" for x, c in by_corruption)
            out += ["", f"Test error against label corruption p: {points}."]
    if report.HasField("memorization"):
        m = report.memorization
        out += [
            "",
            "### Memorisation capacity",
            "",
            f"{memorization_summary(m)}. Published: {PUBLISHED_BITS_PER_PARAMETER} bits per parameter.",
            "",
            "| subset size | fitted | train acc |",
            "| ---: | ---: | ---: |",
            *[f"| {p.size} | {100 * p.fitted_fraction:.0f}% | {mean_std(p.train_accuracy)} |" for p in m.points],
        ]
    if report.HasField("rademacher"):
        r = report.rademacher
        out += ["", "### Rademacher complexity and norm bounds", "", f"On {r.examples} training examples; {r.note}", "", "| hypothesis class | R̂ | interval |", "| --- | ---: | ---: |"]
        if r.HasField("global_estimate"):
            g = r.global_estimate
            label = f"sign classifiers (fitted signs; {r.global_training})"
            out.append(f"| {label} | {g.mean:.4g} | [{g.ci_low:.4g}, {g.ci_high:.4g}] |")
        out += [f"| ball ≤ {p.relative_radius:g}·‖w₀‖ | {p.estimate.mean:.4g} | [{p.estimate.ci_low:.4g}, {p.estimate.ci_high:.4g}] |" for p in r.local]
        out += [f"| layer-wise balls ≤ {p.relative_radius:g}·‖W₀‖_F | {p.estimate.mean:.4g} | [{p.estimate.ci_low:.4g}, {p.estimate.ci_high:.4g}] |" for p in r.local_per_layer]
        if r.HasField("sharpness"):
            s = r.sharpness
            out.append(f"| sharpness σ / magnitude-aware σ′ (accuracy drop {s.target_accuracy_drop:g}) | {s.sigma:.4g} | σ′ = {s.magnitude_aware_sigma:.4g} |")
        if r.HasField("distance_from_init_frobenius"):
            out.append(f"| distance from initialisation: Frobenius / Σ spectral | {r.distance_from_init_frobenius:.4g} | {r.distance_from_init_spectral:.4g} |")
        if r.HasField("ntk"):
            out.append(f"| NTK complexity at init ({r.ntk.examples} examples): true / random labels | {r.ntk.true_labels:.4g} | {r.ntk.random_labels:.4g} |")
        out += ["", f"| bound (δ = {r.delta:g}) | test error ≤ | vacuous | what it is | inputs |"]
        out.append("| --- | ---: | --- | --- | --- |")
        out += [
            f"| {b.name} | {f'{b.value:.4g}' if b.HasField('value') else 'n/a'} | {'yes' if b.vacuous else 'no'} "
            f"| {bound_status(b)} | {b.inputs} |"
            for b in r.bounds
        ]
        out += [
            "",
            "| layer | input | spectral (operator) | spectral (reshaped kernel) | Frobenius (operator) "
            "| Frobenius (kernel) |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        out += [
            f"| {x.name} | {list(x.input_shape)} | {x.spectral:.4g} | {x.spectral_reshaped_kernel:.4g} "
            f"| {x.frobenius:.4g} | {x.frobenius_kernel:.4g} |"
            for x in r.layers
        ]
        out += [
            "",
            "The bounds use the operator norms (the layer's linear map at its input size); the kernel columns "
            "are for comparison.",
        ]
        if r.generalization_measures:
            out += ["", f"**{generalization_view.TITLE}**", "", "| " + " | ".join(generalization_view.COLUMNS) + " |"]
            out.append("| --- | --- | ---: | --- |")
            out += ["| " + " | ".join(row) + " |" for row in generalization_view.measure_rows(r)]
    if report.HasField("compressibility"):
        c = report.compressibility
        out += [
            "",
            "### Compressibility",
            "",
            f"One-shot, {c.eval_split} accuracy {percent(c.baseline_accuracy)}, tolerance {100 * c.tolerance:g} point(s).",
            "",
            "| method | s* | compression ratio | s* on train |",
            "| --- | ---: | ---: | ---: |",
            *[f"| {m.method} | {percent(m.sparsity)} | {m.compression_ratio:.1f}× | {percent(m.train_sparsity)} |" for m in c.methods],
        ]
        others = best_within_tolerance(c)
        if others:
            out += ["", f"| {' | '.join(COMPRESSION_COLUMNS)} |", "| --- | --- | ---: | ---: | ---: |"]
            out += [f"| {' | '.join(compression_row(c, method, point))} |" for method, point in others]
        if c.ranks:
            out += ["", "| layer | full rank | stable rank | effective rank | sensitivity integral |", "| --- | ---: | ---: | ---: | ---: |"]
            integrals = {s.layer: s.integral for s in c.sensitivities}
            out += [
                f"| {r.layer} | {r.full_rank} | {r.stable_rank:.1f} | {r.effective_rank:.1f} | {f'{integrals[r.layer]:.4f}' if r.layer in integrals else '—'} |"
                for r in c.ranks
            ]
        if c.HasField("bound"):
            b = c.bound
            out += [
                "",
                f"Compression bound ({b.method} at {b.level:g}, {b.code_bits:,.0f} bits, n = {b.n}, δ = {b.delta:g}): "
                f"kl {b.kl_bound:.4f}{' (vacuous)' if b.vacuous else ''}, Catoni {b.catoni_bound:.4f}, Hoeffding {b.hoeffding_bound:.4f}.",
            ]
    if report.HasField("memorization_scores"):
        out += memorization_scores_view.markdown_lines(report.memorization_scores)
    if report.HasField("weights"):
        out += weights_view.markdown_lines(report.weights)
    if report.warnings:
        out += ["", "### Warnings", "", *[f"- ⚠️ {w}" for w in report.warnings]]
    return "\n".join(out) + "\n"
