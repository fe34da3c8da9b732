"""What changed between two reports: every numeric metric, by its policy path."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from effcap.clients.policy import report_dict
from effcap.protos.v1 import report_pb2

# Wall-clock and identity fields change between any two runs; they are not findings.
IGNORED = ("seconds_", "environment.", "audit", "curve", ".seed", "model.digest", "dataset.source")
# Fields that name a list element, in the order tried; the policy paths accept [label] and [key=value].
ELEMENT_KEYS = ("label", "size", "method", "name", "layer")


def flatten(node: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves by policy path; list elements by [label] or [key=value] where that names one element."""
    out: dict[str, float] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out.update(flatten(item, f"{prefix}[{_element_key(node, i)}]"))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        out[prefix] = float(node)
    elif isinstance(node, str):
        try:
            out[prefix] = float(node)  # int64 fields arrive as strings
        except ValueError:
            pass
    return out


def _element_key(items: list, index: int) -> str:
    """`random`, `method=magnitude_global`, `size=256`; the index only where no field tells elements apart."""
    item = items[index]
    for key in ELEMENT_KEYS:
        values = [str(x.get(key)) if isinstance(x, dict) else None for x in items]
        if isinstance(item, dict) and key in item and values.count(str(item[key])) == 1:
            return str(item[key]) if key == "label" else f"{key}={item[key]}"
    return str(index)


def changed_metrics(
    baseline: report_pb2.AuditReport, current: report_pb2.AuditReport
) -> list[tuple[str, float | None, float | None]]:
    a, b = flatten(report_dict(baseline)), flatten(report_dict(current))
    paths = sorted(set(a) | set(b))
    return [
        (p, a.get(p), b.get(p)) for p in paths if not any(marker in p for marker in IGNORED) and a.get(p) != b.get(p)
    ]


def unrelated_because(baseline: report_pb2.AuditReport, current: report_pb2.AuditReport) -> list[str]:
    """Why two reports are not two runs of one audit (different architecture, data or analyses); [] if related.

    A metric-by-metric diff of such reports is hundreds of rows that all differ for the same reason.
    """
    reasons = []
    a, b = baseline.model, current.model
    shape = lambda m: (m.family, m.parameter_count, list(m.input_shape), m.num_classes)  # noqa: E731
    if shape(a) != shape(b):
        reasons.append(
            f"models: {a.family} with {a.parameter_count:,} parameters vs {b.family} with {b.parameter_count:,}"
        )
    if baseline.dataset.source != current.dataset.source:
        reasons.append("datasets: different data")
    sections = [
        sorted(f.name for f, _ in r.spec.ListFields() if f.name not in ("seed", "architecture"))
        for r in (baseline, current)
    ]
    if sections[0] != sections[1]:
        reasons.append(f"analyses: {', '.join(sections[0]) or 'none'} vs {', '.join(sections[1]) or 'none'}")
    return reasons


def diff_view(baseline: report_pb2.AuditReport, current: report_pb2.AuditReport) -> RenderableType:
    """The changed metrics as a table; a sentence instead when nothing changed or the reports are unrelated."""
    reasons = unrelated_because(baseline, current)
    if reasons:
        return Text(f"The reports are unrelated (different {'; '.join(reasons)}): no metric-by-metric diff.")
    changes = changed_metrics(baseline, current)
    if not changes:
        return Text("No metric changed.")
    return Group(diff_table(changes))


def diff_table(changes: list[tuple[str, float | None, float | None]]) -> Table:
    table = Table(title=f"{len(changes)} metric(s) changed", box=box.SIMPLE_HEAD)
    for column in ("metric", "baseline", "current", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=column == "metric")
    for path, old, new in changes:
        change = f"{new - old:+.4g}" if old is not None and new is not None else "—"
        # Text, not markup: [true] and [corrupt(0.5)] in a path are labels, not style tags.
        values = ("—" if v is None else f"{v:.4g}" for v in (old, new))
        table.add_row(Text(path), *values, change)
    return table
