"""An audit's report as a notebook object: it renders itself in Jupyter and converts to a dict or DataFrame."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from effcap.clients.formatting import dataset_summary
from effcap.clients.mlflow_tracking import ANALYSIS_SECTIONS
from effcap.clients.policy import report_dict
from effcap.clients.report_diff import flatten
from effcap.protos.v1 import report_pb2

# Report sections with one row per item, for to_dataframe(section): the list that holds the rows.
TABLES = {
    "weights": ("weights", "layers"),
    "randomization": ("randomization", "conditions"),
    "memorization": ("memorization", "points"),
    "compressibility": ("compressibility", "points"),
    "norms": ("rademacher", "layers"),
}
IFRAME_HEIGHT_PX = 900


class AuditResult:
    """The `AuditReport` of one audit (`.report`), with the views a notebook wants."""

    def __init__(self, report: report_pb2.AuditReport) -> None:
        self.report = report

    def __repr__(self) -> str:
        sections = ", ".join(name for name in ANALYSIS_SECTIONS if self.report.HasField(name))
        audit = self.report.audit or "(local)"
        data = dataset_summary(self.report.dataset).split(",")[0]
        return f"<effcap AuditResult {audit}: {self.report.model.family}; data {data}; {sections}>"

    def _repr_html_(self) -> str:
        """The self-contained HTML report, in an iframe so its page styles do not restyle the notebook around it."""
        from effcap.clients.html_report import report_html

        page = escape(report_html(self.report), quote=True)
        return f'<iframe srcdoc="{page}" style="width: 100%; height: {IFRAME_HEIGHT_PX}px; border: 0"></iframe>'

    def html(self) -> str:
        from effcap.clients.html_report import report_html

        return report_html(self.report)

    def markdown(self) -> str:
        from effcap.clients.markdown_report import report_markdown

        return report_markdown(self.report)

    def to_json(self) -> str:
        """Protobuf's JSON mapping of the report: what `effcap audit --json` prints and `effcap check` reads."""
        from effcap.clients.render import report_json

        return report_json(self.report)

    def save(self, path: str | Path) -> Path:
        """Write the report as .json (a baseline for `effcap check`/`diff`), .html or .md, by the suffix."""
        path = Path(path)
        writers = {".json": self.to_json, ".html": self.html, ".md": self.markdown}
        if path.suffix not in writers:
            raise ValueError(f"save: {path.suffix!r} is not one of {sorted(writers)}")
        path.write_text(writers[path.suffix]())
        return path

    def to_dict(self) -> dict[str, Any]:
        """The report as nested dicts with the .proto field names (the JSON report, parsed)."""
        return report_dict(self.report)

    def metrics(self) -> dict[str, float]:
        """Every numeric value by its policy path (docs/ci.md), e.g. 'card.random_labels_train_accuracy'."""
        return flatten(self.to_dict())

    def to_dataframe(self, section: str | None = None) -> Any:
        """A pandas DataFrame: every metric (columns metric, value) or one section's rows (see TABLES)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install 'effcap[notebook]' (or pandas)") from None
        if section is None:
            return pd.DataFrame(sorted(self.metrics().items()), columns=["metric", "value"])
        if section not in TABLES:
            raise ValueError(f"to_dataframe: unknown section {section!r}; choose from {sorted(TABLES)}")
        name, rows = TABLES[section]
        if not self.report.HasField(name):
            raise ValueError(f"to_dataframe: the report has no {name} section")
        return pd.DataFrame.from_records([_row(row) for row in self.to_dict()[name][rows]])


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """One table row: its identifying strings (layer name, condition label, method) first, then its numbers.

    Lists inside a row (a layer's histogram, a condition's trials) stay in to_dict(): as columns they would
    be dozens of positional ones."""
    scalars = {key: value for key, value in row.items() if not isinstance(value, list)}
    text = {key: value for key, value in scalars.items() if isinstance(value, str) and not _is_number(value)}
    return text | flatten(scalars)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
