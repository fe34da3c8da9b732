"""Policy results for people and CI systems: a terminal table, JUnit XML, and a Markdown summary."""

from __future__ import annotations

from xml.etree import ElementTree

from rich import box
from rich.table import Table
from rich.text import Text

from effcap.clients.policy import RuleResult

ICONS = {"PASS": "✅", "WARN": "⚠️", "FAIL": "❌", "ERROR": "💥", "SKIP": "⏭️"}


def results_table(results: list[RuleResult]) -> Table:
    table = Table(title="policy", box=box.SIMPLE_HEAD)
    for column in ("rule", "severity", "status", "detail"):
        table.add_column(column)
    styles = {"PASS": "green", "WARN": "yellow", "FAIL": "red", "ERROR": "red", "SKIP": "dim"}
    for r in results:
        # Text, not markup: messages quote paths such as conditions[corrupt(0.5)].
        table.add_row(Text(r.rule.name), r.rule.severity, Text(r.status, style=styles[r.status]), Text(r.message))
    return table


def junit_xml(results: list[RuleResult], strict: bool = False) -> str:
    """One testcase per rule: FAIL (and WARN under --strict) as <failure>, ERROR as <error>, SKIP as <skipped>."""
    failures = sum(r.status == "FAIL" or (strict and r.status == "WARN") for r in results)
    errors = sum(r.status == "ERROR" for r in results)
    skipped = sum(r.status == "SKIP" for r in results)
    counts = {"tests": len(results), "failures": failures, "errors": errors, "skipped": skipped}
    suite = ElementTree.Element("testsuite", name="effcap policy", **{k: str(v) for k, v in counts.items()})
    for r in results:
        case = ElementTree.SubElement(suite, "testcase", classname="effcap.policy", name=r.rule.name)
        if r.status == "ERROR":
            ElementTree.SubElement(case, "error", message=r.message)
        elif r.status == "FAIL" or (strict and r.status == "WARN"):
            ElementTree.SubElement(case, "failure", message=r.message, type=r.rule.severity)
        elif r.status == "SKIP":
            ElementTree.SubElement(case, "skipped", message=r.message)
        out = ElementTree.SubElement(case, "system-out")
        out.text = f"{r.status} {r.rule.metric}: {r.message}"
    return ElementTree.tostring(ElementTree.ElementTree(suite).getroot(), encoding="unicode", xml_declaration=True)


def markdown_summary(results: list[RuleResult], verdict: str) -> str:
    lines = [f"### effcap policy: {verdict}", "", "| | rule | metric | severity | result |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {ICONS[r.status]} | {r.rule.name} | `{r.rule.metric}` | {r.rule.severity} | {r.status}: {r.message} |")
    return "\n".join(lines) + "\n"
