"""CI policies: rules on report metrics, absolute or relative to a baseline report, with severities.

A policy is YAML (or JSON):

    rules:
      - name: random-labels-are-not-memorised-too-fast
        metric: card.random_labels_slowdown        # a path into the report (see docs/ci.md)
        min: 2.0                                   # and/or max
        severity: warn                             # fail (default) or warn
      - name: no-test-accuracy-regression
        metric: randomization.conditions[true].test_accuracy.mean
        max_decrease: 0.01                         # against --baseline; relative: true for a fraction
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from effcap.clients.errors import EffcapError
from effcap.protos.v1 import report_pb2

# SKIP: a baseline rule on a first run, when there is no baseline yet (it passes, with a note).
Status = Literal["PASS", "WARN", "FAIL", "ERROR", "SKIP"]
EXIT_PASS, EXIT_VIOLATED, EXIT_ERROR = 0, 1, 2
_SEGMENT = re.compile(r"^(?P<field>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<selector>[^\]]+)\])?$")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    metric: str = Field(min_length=1)
    description: str = ""
    severity: Literal["fail", "warn"] = "fail"
    min: float | None = None
    max: float | None = None
    # Against the baseline report: how far the metric may fall or rise.
    max_decrease: float | None = Field(None, ge=0)
    max_increase: float | None = Field(None, ge=0)
    # Read max_decrease / max_increase as fractions of the baseline value.
    relative: bool = False

    @model_validator(mode="after")
    def _has_a_condition(self) -> Rule:
        if all(v is None for v in (self.min, self.max, self.max_decrease, self.max_increase)):
            raise ValueError("give at least one of min, max, max_decrease, max_increase")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is larger than max")
        return self

    @property
    def needs_baseline(self) -> bool:
        return self.max_decrease is not None or self.max_increase is not None


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {duplicates}")
        return self


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    status: Status
    message: str
    value: float | None = None
    baseline: float | None = None


def load_policy(path: Path) -> Policy:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise EffcapError(f"policy {path}: {error.strerror}", "INVALID_ARGUMENT") from None
    except yaml.YAMLError as error:
        raise EffcapError(f"policy {path}: not valid YAML: {error}", "INVALID_ARGUMENT") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = _describe_location(data, first["loc"])
        # A validator's own words, not pydantic's "Value error, ..." (clients do not import the library's helper).
        raised = first.get("ctx", {}).get("error")
        text = str(raised) if first["type"] == "value_error" and raised is not None else first["msg"]
        raise EffcapError(f"policy {path}: {location}: {text}", "INVALID_ARGUMENT", field=location) from None


def _describe_location(data: Any, loc: tuple) -> str:
    """'rules[1] (name: foo).max_decrease' rather than pydantic's bare tuple."""
    parts = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
            try:
                name = data["rules"][part].get("name")
                if name and loc[i - 1] == "rules":
                    parts[-1] += f" (name: {name})"
            except (TypeError, KeyError, IndexError, AttributeError):
                pass
        else:
            parts.append(str(part))
    return ".".join(parts) or "policy"


def load_report(path: Path) -> report_pb2.AuditReport:
    report = report_pb2.AuditReport()
    try:
        json_format.Parse(path.read_text(), report)
    except OSError as error:
        raise EffcapError(f"report {path}: {error.strerror}", "INVALID_ARGUMENT") from None
    except json_format.ParseError as error:
        raise EffcapError(f"report {path}: not an effcap report in JSON: {error}", "INVALID_ARGUMENT") from None
    return report


def report_dict(report: report_pb2.AuditReport) -> dict[str, Any]:
    """The report as its JSON mapping with proto field names, zero values included."""
    return json_format.MessageToDict(report, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def metric_value(data: dict[str, Any], path: str) -> float:
    """Resolve a metric path: dotted fields (snake_case or lowerCamelCase); list elements by [index],
    [key=value] (e.g. points[size=256]) or [label] for [label=label] (e.g. conditions[random]).
    Raises KeyError saying what is missing."""
    node: Any = data
    for segment in _segments(path):
        match = _SEGMENT.match(segment)
        if match is None:
            raise KeyError(f"malformed segment {segment!r}")
        field = re.sub(r"(?<!^)(?=[A-Z])", "_", match["field"]).lower()
        if not isinstance(node, dict) or field not in node:
            raise KeyError(f"no field {field!r} (in {path!r})")
        node = node[field]
        if match["selector"] is not None:
            node = _select(node, match["selector"], path)
    if isinstance(node, bool) or not isinstance(node, (int, float, str)):
        raise KeyError(f"{path!r} is not a number")
    try:
        return float(node)  # int64 fields arrive as strings in the JSON mapping
    except ValueError:
        raise KeyError(f"{path!r} is not a number") from None


def _segments(path: str) -> list[str]:
    """Split a path at the dots outside brackets: `conditions[corrupt(0.5)]` is one segment."""
    segments, depth, start = [], 0, 0
    for i, char in enumerate(path):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "." and depth == 0:
            segments.append(path[start:i])
            start = i + 1
    segments.append(path[start:])
    return segments


def _select(items: Any, selector: str, path: str) -> Any:
    if not isinstance(items, list):
        raise KeyError(f"[{selector}] applied to a non-list (in {path!r})")
    if selector.lstrip("-").isdigit():
        index = int(selector)
        if not -len(items) <= index < len(items):
            raise KeyError(f"index [{selector}] out of range (in {path!r})")
        return items[index]
    key, _, value = selector.rpartition("=") if "=" in selector else ("label", "", selector)
    for item in items:
        if isinstance(item, dict) and str(item.get(key)) == value:
            return item
    raise KeyError(f"no element [{selector}] (in {path!r})")


def evaluate(policy: Policy, report: report_pb2.AuditReport, baseline: report_pb2.AuditReport | None = None) -> list[RuleResult]:
    current = report_dict(report)
    previous = report_dict(baseline) if baseline is not None else None
    return [_evaluate_rule(rule, current, previous) for rule in policy.rules]


def _evaluate_rule(rule: Rule, current: dict[str, Any], baseline: dict[str, Any] | None) -> RuleResult:
    try:
        value = metric_value(current, rule.metric)
    except KeyError as error:
        # Under a warn rule a missing metric (e.g. nothing fitted, so no slowdown) is a warning, not a broken CI.
        status = "WARN" if rule.severity == "warn" else "ERROR"
        return RuleResult(rule, status, f"metric not in the report: {error.args[0]}")
    problems = []
    if rule.min is not None and value < rule.min:
        problems.append(f"{value:g} < min {rule.min:g}")
    if rule.max is not None and value > rule.max:
        problems.append(f"{value:g} > max {rule.max:g}")
    reference = None
    if rule.needs_baseline:
        if baseline is None:
            # A first run has no baseline yet (docs/ci.md passes --baseline only when one exists).
            note = "skipped: no --baseline given (a first run); the rule applies once a baseline report exists"
            return RuleResult(rule, "SKIP", note, value)
        try:
            reference = metric_value(baseline, rule.metric)
        except KeyError as error:
            return RuleResult(rule, "ERROR", f"metric not in the baseline report: {error.args[0]}", value)
        change = value - reference
        scale = abs(reference) if rule.relative else 1.0
        unit = " of the baseline" if rule.relative else ""
        if rule.max_decrease is not None and -change > rule.max_decrease * scale:
            problems.append(f"fell by {-change:g} from {reference:g} (allowed {rule.max_decrease:g}{unit})")
        if rule.max_increase is not None and change > rule.max_increase * scale:
            problems.append(f"rose by {change:g} from {reference:g} (allowed {rule.max_increase:g}{unit})")
    if not problems:
        return RuleResult(rule, "PASS", f"{value:g}" + (f" (baseline {reference:g})" if reference is not None else ""), value, reference)
    return RuleResult(rule, "FAIL" if rule.severity == "fail" else "WARN", "; ".join(problems), value, reference)


def exit_code(results: list[RuleResult], strict: bool = False) -> int:
    statuses = {r.status for r in results}
    if "ERROR" in statuses:
        return EXIT_ERROR
    if "FAIL" in statuses or (strict and "WARN" in statuses):
        return EXIT_VIOLATED
    return EXIT_PASS
