"""The `weights` section (per-layer spectra) in the three human formats: terminal, Markdown, HTML.

One module so the columns and the reading of α (Martin & Mahoney's [2, 6]) are written once.
"""

from __future__ import annotations

from html import escape

from rich import box
from rich.table import Table

from effcap.clients.svg_chart import Chart, Series, render_svg
from effcap.protos.v1 import report_pb2

COLUMNS = ("layer", "kind", "matrix", "σ_max", "stable rank", "α", "KS distance", "tail", "α̂ (weighted)")
# Layers drawn in the ESD figure: more lines than colours would be unreadable.
MAX_ESD_SERIES = 8
READING = (
    "α is the exponent of a power law p(λ) ∝ λ^−α fitted to the tail of the eigenvalues of WᵀW (Clauset's xmin by "
    "KS distance, maximum likelihood); WeightWatcher reads α in [2, 6] as well trained, below 2 as very heavy tailed "
    "(over-fitted), above 6 as close to random. A KS distance above ~0.1 means the tail is not a clean power law. "
    "Convolutions pool one (c_out × c_in) matrix per kernel position; no data was used."
)


def summary(w: report_pb2.WeightsReport) -> str:
    mean = f"mean α {w.mean_alpha:.2f}" if w.HasField("mean_alpha") else "no layer had enough eigenvalues for α"
    return (
        f"{len(w.layers)} weight layers, {w.layers_fitted} with a power-law fit; {mean}; "
        f"{w.layers_alpha_outside_range} outside [2, 6]"
    )


def layer_row(layer: report_pb2.LayerSpectrum) -> tuple[str, ...]:
    matrix = f"{layer.rows}×{layer.columns}" + (f" ×{layer.matrices}" if layer.matrices > 1 else "")
    fitted = layer.HasField("alpha")
    return (
        layer.name,
        layer.kind,
        matrix,
        f"{layer.spectral_norm:.3g}",
        f"{layer.stable_rank:.2f}",
        f"{layer.alpha:.2f}" if fitted else "n/a",
        f"{layer.ks_distance:.3f}" if fitted else "n/a",
        f"{layer.tail_eigenvalues}/{layer.eigenvalues}" if fitted else f"0/{layer.eigenvalues}",
        f"{layer.alpha_weighted:.2f}" if fitted else "n/a",
    )


def terminal_tables(w: report_pb2.WeightsReport) -> list[Table]:
    table = Table(title=f"Weight spectra: {summary(w)}", box=box.SIMPLE_HEAD)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("layer", "kind") else "right")
    for layer in w.layers:
        table.add_row(*layer_row(layer))
    return [table]


def markdown_lines(w: report_pb2.WeightsReport) -> list[str]:
    out = ["", "### Weight spectra", "", f"{summary(w)}.", "", READING, ""]
    out += ["| " + " | ".join(COLUMNS) + " |", "| --- | --- |" + " ---: |" * (len(COLUMNS) - 2)]
    out += ["| " + " | ".join(layer_row(layer)) + " |" for layer in w.layers]
    return out


def html_section(w: report_pb2.WeightsReport) -> list[str]:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in layer_row(layer)) + "</tr>" for layer in w.layers)
    return [
        "<h2>Weight spectra</h2>",
        f"<p>{escape(summary(w))}.</p>",
        f"<p><small>{escape(READING)}</small></p>",
        f'<table data-table="weight-spectra"><tr>{head}</tr>{rows}</table>',
        *_figures(w),
    ]


def _figures(w: report_pb2.WeightsReport) -> list[str]:
    esd = Chart(
        "eigenvalue λ of WᵀW (log scale)",
        "eigenvalues per bin",
        [
            Series(
                layer.name,
                [
                    ((lo * hi) ** 0.5, c)
                    for lo, hi, c in zip(layer.esd_bin_edges, layer.esd_bin_edges[1:], layer.esd_counts)
                ],
            )
            for layer in list(w.layers)[:MAX_ESD_SERIES]
            if layer.esd_counts
        ],
        x_log=True,
    )
    fitted = [(i, layer.alpha) for i, layer in enumerate(w.layers) if layer.HasField("alpha")]
    alphas = Chart(
        "layer (module order)",
        "power-law exponent α",
        [Series("α", fitted)],
        reference_lines=[(2.0, "α = 2"), (6.0, "α = 6")],
    )
    names = ", ".join(f"{i}: {layer.name}" for i, layer in enumerate(w.layers))
    shown = min(len(w.layers), MAX_ESD_SERIES)
    esd_caption = (
        f"Empirical spectral densities (log-binned) of the first {shown} layers. "
        "A heavy right tail is what training adds to a random matrix's bulk."
    )
    return [
        f'<figure data-plot="weight-esd">{render_svg(esd)}<figcaption>{escape(esd_caption)}</figcaption></figure>',
        f'<figure data-plot="weight-alpha">{render_svg(alphas)}'
        f"<figcaption>{escape('α per layer, with [2, 6] marked. Layers: ' + names)}</figcaption></figure>",
    ]
