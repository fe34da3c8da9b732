"""The memorisation-scores section in the three human formats (terminal, Markdown, HTML).

One module so that the wording, the columns and the ± convention are written once; the HTML adds the
examples' pictures (inline PNG data URLs) and the histogram as an inline SVG bar chart.
"""

from __future__ import annotations

import base64
from html import escape

from rich import box
from rich.table import Table

from effcap.protos.v1 import report_pb2

EXAMPLE_COLUMNS = ("train row", "given label", "mem ± s.e.", "C-score", "held-out prediction", "models in/out")
PAIR_COLUMNS = ("train row", "test row", "infl ± s.e.", "train label", "test label", "mem(train)")


def summary(s: report_pb2.MemorizationScoresReport) -> str:
    return (
        f"{s.models} networks, each on {s.subset_size} of {s.train_examples} train examples (r = {s.subset_fraction:g}); "
        f"{100 * s.share_above_0_25:.1f}% of examples have mem > 0.25 and {100 * s.share_above_0_5:.1f}% have mem > 0.5; "
        f"mean mem {s.mean_memorization:.3f} (mean s.e. {s.mean_standard_error:.3f}), mean C-score {s.mean_consistency:.3f}; "
        f"networks fitted {100 * s.fitted_fraction:.0f}%, test accuracy {s.test_accuracy.mean:.3f}"
    )


def histogram_text(s: report_pb2.MemorizationScoresReport) -> str:
    """The non-empty bins of the mem(i) histogram, e.g. "[-0.1, 0.0): 12 · [0.0, 0.1): 1003"."""
    bins = zip(s.histogram_edges[:-1], s.histogram_edges[1:], s.histogram_counts)
    return " · ".join(f"[{lo:+.1f}, {hi:+.1f}): {count}" for lo, hi, count in bins if count)


def example_row(e: report_pb2.ExampleScore) -> tuple[str, ...]:
    held_out = f"{e.held_out_prediction} ({100 * e.held_out_agreement:.0f}%)" if e.models_out else "n/a"
    return (
        str(e.index),
        str(e.label),
        f"{e.memorization:.2f} ± {e.memorization_standard_error:.2f}",
        f"{e.consistency:.2f}",
        held_out,
        f"{e.models_in}/{e.models_out}",
    )


def pair_row(p: report_pb2.InfluencePair) -> tuple[str, ...]:
    return (
        str(p.train_index),
        str(p.test_index),
        f"{p.influence:.2f} ± {p.influence_standard_error:.2f}",
        str(p.train_label),
        str(p.test_label),
        f"{p.train_memorization:.2f}",
    )


def terminal_tables(s: report_pb2.MemorizationScoresReport) -> list[Table]:
    examples = Table(
        title=f"Memorisation scores: {summary(s)}.\nmem histogram: {histogram_text(s)}", box=box.SIMPLE_HEAD
    )
    for column in EXAMPLE_COLUMNS:
        examples.add_column(column, justify="right")
    for e in s.top_memorized:
        examples.add_row(*example_row(e))
    tables = [examples]
    if s.top_influence:
        pairs = Table(title="Largest train → test influence", box=box.SIMPLE_HEAD)
        for column in PAIR_COLUMNS:
            pairs.add_column(column, justify="right")
        for p in s.top_influence:
            pairs.add_row(*pair_row(p))
        tables.append(pairs)
    return tables


def markdown_lines(s: report_pb2.MemorizationScoresReport) -> list[str]:
    out = [
        "",
        "### Memorisation scores",
        "",
        f"{summary(s)}.",
        "",
        f"Definitions: {s.definitions}",
        "",
        f"mem histogram: {histogram_text(s)}",
        "",
    ]
    out += ["| " + " | ".join(EXAMPLE_COLUMNS) + " |", "|" + " ---: |" * len(EXAMPLE_COLUMNS)]
    out += ["| " + " | ".join(example_row(e)) + " |" for e in s.top_memorized]
    if s.top_influence:
        out += [
            "",
            "Largest train → test influence:",
            "",
            "| " + " | ".join(PAIR_COLUMNS) + " |",
            "|" + " ---: |" * len(PAIR_COLUMNS),
        ]
        out += ["| " + " | ".join(pair_row(p)) + " |" for p in s.top_influence]
    out += ["", _archive_note(s)]
    return out


def html_section(s: report_pb2.MemorizationScoresReport) -> list[str]:
    head = "".join(f"<th>{escape(c)}</th>" for c in ("picture", *EXAMPLE_COLUMNS))
    rows = "".join(
        f"<tr><td>{_img(e.thumbnail_png, f'train {e.index}')}</td>"
        + "".join(f"<td>{escape(v)}</td>" for v in example_row(e))
        + "</tr>"
        for e in s.top_memorized
    )
    pair_head = "".join(f"<th>{escape(c)}</th>" for c in ("train", "test", *PAIR_COLUMNS))
    pair_rows = "".join(
        f"<tr><td>{_img(p.train_thumbnail_png, f'train {p.train_index}')}</td><td>{_img(p.test_thumbnail_png, f'test {p.test_index}')}</td>"
        + "".join(f"<td>{escape(v)}</td>" for v in pair_row(p))
        + "</tr>"
        for p in s.top_influence
    )
    parts = [
        "<h2>Memorisation scores</h2>",
        f"<p>{escape(summary(s))}.</p>",
        f"<p><small>{escape(s.definitions)}</small></p>",
        _histogram_svg(s),
        f'<table data-table="top-memorized"><tr>{head}</tr>{rows}</table>',
    ]
    if s.top_influence:
        parts += [
            "<h3>Largest train → test influence</h3>",
            f'<table data-table="top-influence"><tr>{pair_head}</tr>{pair_rows}</table>',
        ]
    if s.scores.npz:
        link = base64.b64encode(s.scores.npz).decode()
        parts.append(
            f'<p><a download="memorization_scores.npz" href="data:application/octet-stream;base64,{link}">Download every example\'s scores (.npz, {len(s.scores.npz):,} bytes)</a></p>'
        )
    else:
        parts.append(f"<p>{escape(_archive_note(s))}</p>")
    return parts


def _archive_note(s: report_pb2.MemorizationScoresReport) -> str:
    if s.scores.npz:
        return f"Every example's scores: `effcap report REPORT --scores-out scores.npz` ({s.scores.size_bytes:,} bytes, sha256 {s.scores.sha256[:12]})."
    return f"The scores archive ({s.scores.size_bytes:,} bytes, sha256 {s.scores.sha256[:12]}) was too large to travel in the report."


def _img(png: bytes, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode()
    return f'<img class="thumb" alt="{escape(alt)}" width="48" height="48" style="image-rendering: pixelated" src="data:image/png;base64,{data}">'


def _histogram_svg(s: report_pb2.MemorizationScoresReport) -> str:
    """Bars of the mem(i) histogram on a log-free count axis (most examples sit near 0)."""
    width, height, left, bottom = 560, 200, 40, 30
    counts = list(s.histogram_counts)
    if not counts:
        return ""
    peak = max(max(counts), 1)
    bar = (width - left) / len(counts)
    bars = "".join(
        f'<rect x="{left + i * bar:.1f}" y="{height - bottom - (height - bottom - 10) * c / peak:.1f}" width="{bar - 2:.1f}" '
        f'height="{(height - bottom - 10) * c / peak:.1f}" fill="#1f77b4"><title>[{lo:+.1f}, {hi:+.1f}): {c}</title></rect>'
        for i, (lo, hi, c) in enumerate(zip(s.histogram_edges[:-1], s.histogram_edges[1:], counts))
    )
    ticks = "".join(
        f'<text x="{left + i * bar:.1f}" y="{height - 10}" font-size="10" text-anchor="middle">{edge:+.1f}</text>'
        for i, edge in enumerate(s.histogram_edges)
        if i % 5 == 0
    )
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">{bars}{ticks}<text x="0" y="12" font-size="10">{peak}</text></svg>'
    caption = "Histogram of mem(i) over the train examples. Mislabelled and atypical examples sit on the right: only networks that trained on them get them right."
    return f'<figure data-plot="memorization-histogram">{svg}<figcaption>{escape(caption)}</figcaption></figure>'
