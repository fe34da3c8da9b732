"""Small self-contained SVG line charts for HTML reports: no plotting library, no network."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 560, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 16, 48
# A generous width per character of 11px sans-serif text: the legend and tick labels get room for their
# whole names (they were cut off at a fixed 150px margin).
CHAR_PX = 6.6


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
    # Log y for quantities spanning decades (R̂ over radii 0.001–0.1); points with y <= 0 are left out.
    y_log: bool = False
    y_range: tuple[float, float] | None = None
    # Names for x positions (layers in forward order) shown instead of numbers.
    x_tick_labels: dict[float, str] = field(default_factory=dict)
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


def _plotted(chart: Chart) -> list[Series]:
    """The series with the points a log axis can show."""
    keep = lambda x, y: (x > 0 or not chart.x_log) and (y > 0 or not chart.y_log)  # noqa: E731
    return [Series(s.name, [(x, y) for x, y in s.points if keep(x, y)], s.dashed) for s in chart.series]


def render_svg(chart: Chart) -> str:
    series = _plotted(chart)
    points = [p for s in series for p in s.points]
    if not points:
        return '<p class="empty">no data to plot</p>'
    xs = [x for x, _ in points]
    x_lo, x_hi = min(xs), max(xs)
    if chart.x_log:
        x_lo, x_hi = max(x_lo, 1e-12), max(x_hi, x_lo * 10)
    references = [y for y, _ in chart.reference_lines if y > 0 or not chart.y_log]
    ys = [y for _, y in points] + references  # a reference line (e.g. freely fitted signs) stays in view
    y_lo, y_hi = chart.y_range or (min(ys), max(ys))
    if chart.y_log:
        y_lo, y_hi = max(y_lo, 1e-12), max(y_hi, y_lo * 10)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    legend_w = max(RIGHT, 40 + math.ceil(CHAR_PX * max(len(s.name) for s in series)))
    tick_h = math.ceil(CHAR_PX * 0.6 * max((len(t) for t in chart.x_tick_labels.values()), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    width, height = LEFT + plot_w + legend_w, HEIGHT + tick_h

    def scale(v: float, lo: float, hi: float, log: bool) -> float:
        return (math.log10(v / lo) / math.log10(hi / lo)) if log else (v - lo) / (hi - lo)

    def sx(x: float) -> float:
        return LEFT + scale(x, x_lo, x_hi, chart.x_log) * plot_w

    def sy(y: float) -> float:
        return TOP + (1 - scale(y, y_lo, y_hi, chart.y_log)) * plot_h

    size = f'viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" {size} role="img">'
    parts = [svg, f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    x_ticks = chart.x_tick_labels or {t: _fmt(t) for t in _ticks(x_lo, x_hi, chart.x_log)}
    for t, label in x_ticks.items():
        if x_lo <= t <= x_hi:
            x, y = sx(t), TOP + plot_h + 16
            parts.append(f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 4}" stroke="#555"/>')
            # Names are turned so that neighbouring layers do not overlap.
            turn = ' text-anchor="middle"'
            if chart.x_tick_labels:
                turn = f' transform="rotate(-35 {x:.1f} {y})" text-anchor="end"'
            parts.append(f'<text class="x-tick" x="{x:.1f}" y="{y}" font-size="11"{turn}>{escape(label)}</text>')
    for t in _ticks(y_lo, y_hi, chart.y_log):
        if y_lo <= t <= y_hi:
            y = sy(t)
            parts.append(f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{_fmt(t)}</text>')
    x_label = escape(chart.x_label)
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{height - 8}" font-size="12" text-anchor="middle">{x_label}</text>')
    parts.append(f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" font-size="12" text-anchor="middle">{escape(chart.y_label)}</text>')
    for y, label in chart.reference_lines:
        if y_lo <= y <= y_hi and (y > 0 or not chart.y_log):
            parts.append(f'<line x1="{LEFT}" y1="{sy(y):.1f}" x2="{LEFT + plot_w}" y2="{sy(y):.1f}" stroke="#888" stroke-dasharray="2 3"/>')
            parts.append(f'<text x="{LEFT + plot_w - 4}" y="{sy(y) - 4:.1f}" font-size="10" text-anchor="end" fill="#555">{escape(label)}</text>')
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y) in enumerate(sorted(s.points)))
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(f'<path class="series" d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in s.points:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>')
        ly, lx = TOP + 14 + 16 * i, LEFT + plot_w
        stroke = f'stroke="{colour}" stroke-width="2"{dash}'
        parts.append(f'<line x1="{lx + 10}" y1="{ly - 4}" x2="{lx + 28}" y2="{ly - 4}" {stroke}/>')
        parts.append(f'<text class="legend" x="{lx + 32}" y="{ly}" font-size="11">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
