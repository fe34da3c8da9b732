"""A self-contained HTML report: inline CSS and SVG plots, nothing fetched when it is opened."""

from __future__ import annotations

from html import escape

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
from effcap.clients.svg_chart import Chart, Series, render_svg
from effcap.protos.v1 import report_pb2

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
.card { border: 2px solid #1f77b4; border-radius: 8px; padding: 0.5em 1.2em; background: #f5f9fd; }
table { border-collapse: collapse; margin: 1em 0; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figcaption { font-size: 0.9em; color: #444; max-width: 720px; }
.warning { color: #8a5a00; }
"""


def _figure(chart: Chart, caption: str, name: str) -> str:
    return f'<figure data-plot="{name}">{render_svg(chart)}<figcaption>{escape(caption)}</figcaption></figure>'


def _corruption_figure(r: report_pb2.RandomizationReport, chance: float) -> str:
    by_corruption = label_conditions(r)
    chart = Chart(
        "label corruption p (fraction of train labels redrawn at random)",
        "accuracy",
        [
            Series("train", [(x, c.train_accuracy.mean) for x, c in by_corruption]),
            Series("test (clean labels)", [(x, c.test_accuracy.mean) for x, c in by_corruption]),
        ],
        y_range=(0.0, 1.0),
        reference_lines=[(chance, "chance")],
    )
    return _figure(
        chart,
        "Train and test accuracy against label corruption. A flat train line at 1 means the network fits "
        "whatever labels it is given; the test line falling towards chance shows that what it fits at high "
        "corruption is memorised, not learnt.",
        "accuracy-vs-corruption",
    )


def _learning_curves_figure(r: report_pb2.RandomizationReport) -> str:
    series = []
    for c in r.conditions:
        trial = c.trials[0] if c.trials else None
        if trial is not None:
            series.append(Series(f"{c.label} (seed 0)", [(p.step, p.train_accuracy) for p in trial.curve]))
    chart = Chart("SGD steps", "train accuracy", series, y_range=(0.0, 1.0), reference_lines=[(r.fit_threshold, "fit threshold")])
    return _figure(
        chart,
        "Learning curves (train accuracy on the labels trained on, one seed per condition). Where a curve meets "
        "the fit threshold is the time to fit; random labels reaching it only a small factor later than true "
        "labels is the effective-capacity signature of Zhang et al. (2017).",
        "learning-curves",
    )


def _capacity_figure(m: report_pb2.MemorizationReport) -> str:
    chart = Chart(
        "subset size m (examples with random labels)",
        "fraction of seeds that fitted",
        [Series("fitted", [(p.size, p.fitted_fraction) for p in m.points]), Series("train accuracy", [(p.size, p.train_accuracy.mean) for p in m.points], dashed=True)],
        x_log=True,
        y_range=(0.0, 1.05),
    )
    bound = "at least " if m.reached_max_size else ""
    return _figure(
        chart,
        "Memorisation capacity curve. The largest subset fitted within the budget is "
        f"m* {'≥' if bound else '='} {m.largest_fitted_size} "
        f"({bound}{m.capacity_bits:.0f} bits); beyond it the network runs out of capacity (or of budget: m* is a lower estimate).",
        "capacity-curve",
    )


def _rademacher_figures(r: report_pb2.RademacherReport) -> list[str]:
    curve = Chart(
        "ball radius r / ‖w₀‖ (log scale)",
        "empirical Rademacher complexity R̂ (log scale)",
        [
            Series("R̂ of the ball about the checkpoint", [(p.relative_radius, p.estimate.mean) for p in r.local]),
            Series("upper end of interval", [(p.relative_radius, p.estimate.ci_high) for p in r.local], dashed=True),
            Series("layer-wise Frobenius balls", [(p.relative_radius, p.estimate.mean) for p in r.local_per_layer]),
        ],
        x_log=True,
        y_log=True,  # R̂ grows with r over decades: on a linear axis the small radii lie flat on zero
        reference_lines=[(r.global_estimate.mean, "fitted random signs")] if r.HasField("global_estimate") else [],
    )
    layers = Chart(
        "layer (in forward order)",
        "norm",
        [
            Series("spectral (operator)", [(i, x.spectral) for i, x in enumerate(r.layers)]),
            Series("spectral (reshaped kernel)", [(i, x.spectral_reshaped_kernel) for i, x in enumerate(r.layers)], dashed=True),
            Series("Frobenius (operator)", [(i, x.frobenius) for i, x in enumerate(r.layers)]),
            Series("Frobenius (kernel)", [(i, x.frobenius_kernel) for i, x in enumerate(r.layers)], dashed=True),
        ],
        x_tick_labels={i: x.name for i, x in enumerate(r.layers)},
    )
    return [
        _figure(
            curve,
            "Rademacher complexity of the networks within distance r of the checkpoint: how well they can correlate with random "
            "signs. It grows with r; where it reaches the level of freely fitted random signs, the class is as rich as the whole "
            "architecture, and norm-based bounds at that radius are vacuous.",
            "rademacher-vs-radius",
        ),
        _figure(
            layers,
            "Per-layer norms with BatchNorm folded in. The operator norms (spectral and Frobenius, of the "
            "layer's linear map) are the ones the bounds use; the reshaped-kernel and kernel values, which "
            "other tools report, can be far from them for convolutions.",
            "layer-norms",
        ),
    ]


def _compressibility_figures(c: report_pb2.CompressibilityReport) -> list[str]:
    methods = list(dict.fromkeys(p.method for p in c.points))
    accuracy = Chart(
        "compression ratio (all parameters / nonzero, log scale)",
        f"{c.eval_split} accuracy",
        [Series(m, [(p.compression_ratio, p.accuracy) for p in c.points if p.method == m]) for m in methods],
        x_log=True,
        y_range=(0.0, 1.0),
        reference_lines=[(c.baseline_accuracy - c.tolerance, "tolerance")],
    )
    figures = [
        _figure(
            accuracy,
            "Accuracy against compression for each method. Where a curve leaves the tolerance line is the largest compression "
            "that keeps the trained function; random pruning (the control) should leave it first.",
            "accuracy-vs-compression",
        )
    ]
    if c.sensitivities:
        sensitivity = Chart(
            "sparsity of one layer",
            f"{c.eval_split} accuracy",
            [Series(s.layer, list(zip(s.sparsities, s.accuracies))) for s in c.sensitivities],
            y_range=(0.0, 1.0),
        )
        figures.append(
            _figure(sensitivity, "Per-layer sensitivity: one layer pruned at a time. Layers whose curve falls early hold the weights the model needs.", "layer-sensitivity")
        )
    return figures


def report_html(report: report_pb2.AuditReport) -> str:
    model, data = report.model, report.dataset
    body = [
        f"<h1>effcap audit {escape(report.audit or '(local)')}</h1>",
        f"<p><b>Model</b> {escape(model.family)}, {model.parameter_count:,} parameters, input {list(model.input_shape)}"
        f"{' · sha256:' + model.digest.sha256[:12] if model.digest.sha256 else ''}<br>"
        f"{escape(onnx_summary(model)) + '<br>' if model.HasField('onnx') else ''}"
        f"<b>Data</b> {escape(dataset_summary(data))}<br>"
        f"<b>Seed</b> {report.spec.seed} · effcap {escape(report.environment.effcap_version)} · torch {escape(report.environment.torch_version)} · {escape(device_summary(report.environment))}</p>",
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in settings_lines(report)) + "</ul>",
        '<section class="card"><h2>Capacity card</h2><ul>' + "".join(f"<li>{escape(line)}</li>" for line in card_lines(report)) + "</ul></section>",
    ]
    if report.HasField("randomization"):
        r = report.randomization
        rows = "".join(
            f"<tr><td>{escape(c.label)}</td><td>{mean_std(c.train_accuracy)}</td><td>{mean_std(c.test_accuracy)}</td>"
            f"<td>{round(c.fitted_fraction * len(c.trials))}/{len(c.trials)}</td><td>{mean_std(c.steps_to_fit, fmt=lambda v: f'{v:.0f}')}</td>"
            f"<td>{slowdown(c)}</td><td>{100 * c.generalization_gap:+.1f}</td></tr>"
            for c in r.conditions
        )
        body += [
            "<h2>Randomization test</h2>",
            f"<p>{escape(randomization_protocol(r))}.</p>",
            "<table><tr><th>condition</th><th>train acc</th><th>test acc</th><th>fitted</th><th>steps to fit</th><th>slowdown</th><th>gap (pts)</th></tr>" + rows + "</table>",
            _corruption_figure(r, report.card.chance_accuracy),
            _learning_curves_figure(r),
        ]
    if report.HasField("memorization"):
        m = report.memorization
        body += [
            "<h2>Memorisation capacity</h2>",
            f"<p>{escape(memorization_summary(m))}. Published: {escape(PUBLISHED_BITS_PER_PARAMETER)} bits per parameter.</p>",
            _capacity_figure(m),
        ]
    if report.HasField("rademacher"):
        r = report.rademacher
        rows = "".join(
            f"<tr><td>{escape(b.name)}</td><td>{f'{b.value:.4g}' if b.HasField('value') else 'n/a'}</td>"
            f"<td>{'yes' if b.vacuous else 'no'}</td><td>{escape(bound_status(b))}</td>"
            f"<td>{escape(b.inputs)}</td></tr>"
            for b in r.bounds
        )
        body += [
            "<h2>Rademacher complexity and norm bounds</h2>",
            f"<p>On {r.examples} training examples. {escape(r.note)}"
            + (f" Sharpness σ = {r.sharpness.sigma:.4g}, magnitude-aware σ′ = {r.sharpness.magnitude_aware_sigma:.4g} ({r.sharpness.forward_passes} forward passes)." if r.HasField("sharpness") else "")
            + (f" NTK complexity at initialisation: {r.ntk.true_labels:.4g} with the true labels, {r.ntk.random_labels:.4g} with random labels." if r.HasField("ntk") else "")
            + "</p>",
            f"<table><tr><th>bound (δ = {r.delta:g})</th><th>test error ≤</th><th>vacuous</th><th>what it is</th>"
            f"<th>inputs</th></tr>{rows}</table>",
            *_rademacher_figures(r),
        ]
        if r.generalization_measures:
            header = "".join(f"<th>{escape(c)}</th>" for c in generalization_view.COLUMNS)
            measures = generalization_view.measure_rows(r)
            cells = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in measures)
            body += [f"<h3>{escape(generalization_view.TITLE)}</h3>", f"<table><tr>{header}</tr>{cells}</table>"]
    if report.HasField("compressibility"):
        c = report.compressibility
        rows = "".join(
            f"<tr><td>{escape(m.method)}</td><td>{percent(m.sparsity)}</td><td>{m.compression_ratio:.1f}×</td><td>{percent(m.train_sparsity)}</td></tr>" for m in c.methods
        )
        bound = ""
        if c.HasField("bound"):
            b = c.bound
            bound = (
                f"<p>Compression bound ({escape(b.method)} at {b.level:g}, {b.code_bits:,.0f} bits, n = {b.n}, δ = {b.delta:g}): kl {b.kl_bound:.4f}"
                f"{' (vacuous)' if b.vacuous else ''}, Catoni {b.catoni_bound:.4f}, Hoeffding {b.hoeffding_bound:.4f}.</p>"
            )
        others = "".join(
            "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in compression_row(c, method, point)) + "</tr>"
            for method, point in best_within_tolerance(c)
        )
        header = "".join(f"<th>{escape(column)}</th>" for column in COMPRESSION_COLUMNS)
        body += [
            "<h2>Compressibility</h2>",
            f"<table><tr><th>method</th><th>s*</th><th>ratio</th><th>s* on train</th></tr>{rows}</table>"
            if rows
            else "",
            f'<table class="other-methods"><tr>{header}</tr>{others}</table>' if others else "",
            bound,
            *_compressibility_figures(c),
        ]
    if report.HasField("memorization_scores"):
        body += memorization_scores_view.html_section(report.memorization_scores)
    if report.HasField("weights"):
        body += weights_view.html_section(report.weights)
    if report.warnings:
        body += ["<h2>Warnings</h2><ul>" + "".join(f'<li class="warning">{escape(w)}</li>' for w in report.warnings) + "</ul>"]
    title = escape(f"effcap audit {report.audit or '(local)'}")
    return f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{STYLE}</style></head><body>{"".join(body)}</body></html>\n'
