"""What changed between two reports: every numeric metric, by its policy path."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from effcap.clients.policy import report_dict
from effcap.protos.v1 import report_pb2

# Wall-clock and identity fields change between any two runs; they are not findings.
IGNORED = ("seconds_", "environment.", "audit", "curve", ".seed", "model.digest", "dataset.source")


def flatten(node: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves by policy path; list elements by [label] or [size=N] where they have one."""
    out: dict[str, float] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            key: object = i
            if isinstance(item, dict) and "label" in item:
                key = item["label"]
            elif isinstance(item, dict) and "size" in item:
                key = f"size={item['size']}"
            out.update(flatten(item, f"{prefix}[{key}]"))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        out[prefix] = float(node)
    elif isinstance(node, str):
        try:
            out[prefix] = float(node)  # int64 fields arrive as strings
        except ValueError:
            pass
    return out


def changed_metrics(baseline: report_pb2.AuditReport, current: report_pb2.AuditReport) -> list[tuple[str, float | None, float | None]]:
    a, b = flatten(report_dict(baseline)), flatten(report_dict(current))
    paths = sorted(set(a) | set(b))
    return [
        (p, a.get(p), b.get(p))
        for p in paths
        if not any(marker in p for marker in IGNORED) and a.get(p) != b.get(p)
    ]


def diff_table(changes: list[tuple[str, float | None, float | None]]) -> Table:
    table = Table(title=f"{len(changes)} metric(s) changed", box=box.SIMPLE_HEAD)
    for column in ("metric", "baseline", "current", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for path, old, new in changes:
        change = f"{new - old:+.4g}" if old is not None and new is not None else "—"
        table.add_row(path, "—" if old is None else f"{old:.4g}", "—" if new is None else f"{new:.4g}", change)
    return table
