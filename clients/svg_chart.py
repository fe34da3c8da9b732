"""Small self-contained SVG line charts for HTML reports: no plotting library, no network."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 560, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 16, 48


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    dashed: bool = False


@dataclass
class Chart:
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    x_log: bool = False
    y_range: tuple[float, float] | None = None
    # Horizontal reference lines: (y, label).
    reference_lines: list[tuple[float, str]] = field(default_factory=list)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    span = hi - lo or 1.0
    step = 10 ** math.floor(math.log10(span / 5))
    step *= next(m for m in (1, 2, 5, 10) if span / (step * m) <= 6)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.0e}"


def render_svg(chart: Chart) -> str:
    points = [p for s in chart.series for p in s.points]
    if not points:
        return '<p class="empty">no data to plot</p>'
    xs = [x for x, _ in points]
    x_lo, x_hi = min(xs), max(xs)
    if chart.x_log:
        x_lo, x_hi = max(x_lo, 1e-12), max(x_hi, x_lo * 10)
    y_lo, y_hi = chart.y_range or (min(y for _, y in points), max(y for _, y in points))
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        if chart.x_log:
            return LEFT + (math.log10(x) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo)) * plot_w
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return TOP + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">']
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    for t in _ticks(x_lo, x_hi, chart.x_log):
        if x_lo <= t <= x_hi:
            parts.append(f'<line x1="{sx(t):.1f}" y1="{TOP + plot_h}" x2="{sx(t):.1f}" y2="{TOP + plot_h + 4}" stroke="#555"/>')
            parts.append(f'<text x="{sx(t):.1f}" y="{TOP + plot_h + 16}" font-size="11" text-anchor="middle">{_fmt(t)}</text>')
    for t in _ticks(y_lo, y_hi, False):
        parts.append(f'<line x1="{LEFT - 4}" y1="{sy(t):.1f}" x2="{LEFT + plot_w}" y2="{sy(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{sy(t) + 4:.1f}" font-size="11" text-anchor="end">{_fmt(t)}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" font-size="12" text-anchor="middle">{escape(chart.x_label)}</text>')
    parts.append(f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" font-size="12" text-anchor="middle">{escape(chart.y_label)}</text>')
    for y, label in chart.reference_lines:
        if y_lo <= y <= y_hi:
            parts.append(f'<line x1="{LEFT}" y1="{sy(y):.1f}" x2="{LEFT + plot_w}" y2="{sy(y):.1f}" stroke="#888" stroke-dasharray="2 3"/>')
            parts.append(f'<text x="{LEFT + plot_w - 4}" y="{sy(y) - 4:.1f}" font-size="10" text-anchor="end" fill="#555">{escape(label)}</text>')
    for i, s in enumerate(chart.series):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y) in enumerate(sorted(s.points)))
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(f'<path class="series" d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in s.points:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>')
        ly = TOP + 14 + 16 * i
        parts.append(f'<line x1="{WIDTH - RIGHT + 10}" y1="{ly - 4}" x2="{WIDTH - RIGHT + 28}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 32}" y="{ly}" font-size="11">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
