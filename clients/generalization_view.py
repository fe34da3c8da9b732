"""Jiang et al. (2020)'s generalisation measures as table rows: one formatting for the text, Markdown and HTML."""

from __future__ import annotations

from effcap.protos.v1 import report_pb2

TITLE = "Generalisation measures (Jiang et al. 2020; predictors of the gap, not bounds; docs/measures.md)"
COLUMNS = ("measure", "defined in", "value", "definition")


def measure_rows(section: report_pb2.RademacherReport) -> list[tuple[str, str, str, str]]:
    """(name, equation, value or why there is none, definition) for every measure the report holds."""
    return [
        (m.name, m.equation, f"{m.value:.4g}" if m.HasField("value") else f"n/a: {m.note}", m.definition)
        for m in section.generalization_measures
    ]
