"""The policy engine: parsing errors that name the rule, metric paths, thresholds, baselines, exit codes."""

from xml.etree import ElementTree

import pytest

from effcap.clients.errors import EffcapError
from effcap.clients.policy import evaluate, exit_code, load_policy, metric_value, report_dict
from effcap.clients.policy_output import junit_xml, markdown_summary
from effcap.clients.report_diff import changed_metrics
from effcap.protos.v1 import report_pb2, spec_pb2


def make_report(true_test=0.95, random_train=1.0, slowdown=3.0, memorized=512) -> report_pb2.AuditReport:
    report = report_pb2.AuditReport()
    for label, kind, test in (("true", spec_pb2.CONDITION_KIND_TRUE_LABELS, true_test), ("random", spec_pb2.CONDITION_KIND_RANDOM_LABELS, 0.1)):
        c = report.randomization.conditions.add(label=label)
        c.condition.kind = kind
        c.test_accuracy.mean = test
        c.train_accuracy.mean = random_train if label == "random" else 1.0
    report.card.random_labels_slowdown = slowdown
    report.card.true_labels_test_accuracy = true_test
    report.memorization.largest_fitted_size = memorized
    report.memorization.points.add(size=256, fitted_fraction=1.0)
    return report


def write_policy(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_metric_paths_accept_fields_selectors_and_camel_case():
    data = report_dict(make_report())
    assert metric_value(data, "card.random_labels_slowdown") == 3.0
    assert metric_value(data, "card.randomLabelsSlowdown") == 3.0
    assert metric_value(data, "randomization.conditions[true].test_accuracy.mean") == 0.95
    assert metric_value(data, "randomization.conditions[1].train_accuracy.mean") == 1.0
    assert metric_value(data, "memorization.largest_fitted_size") == 512  # int64: a string in JSON
    assert metric_value(data, "memorization.points[size=256].fitted_fraction") == 1.0
    assert metric_value(data, "randomization.conditions[label=random].test_accuracy.mean") == 0.1
    for bad in ("card.nope", "randomization.conditions[corrupt(0.5)].label", "randomization.conditions[7].label", "card"):
        with pytest.raises(KeyError):
            metric_value(data, bad)


def test_thresholds_and_severities(tmp_path):
    policy = load_policy(
        write_policy(
            tmp_path,
            """
rules:
  - {name: fits-true-labels, metric: "randomization.conditions[true].test_accuracy.mean", min: 0.9}
  - {name: slowdown-at-least-5, metric: card.random_labels_slowdown, min: 5, severity: warn}
  - {name: capacity-below-1000, metric: memorization.largest_fitted_size, max: 1000}
""",
        )
    )
    results = evaluate(policy, make_report())
    assert [r.status for r in results] == ["PASS", "WARN", "PASS"]
    assert exit_code(results) == 0 and exit_code(results, strict=True) == 1
    results = evaluate(policy, make_report(true_test=0.5, memorized=2000))
    assert [r.status for r in results] == ["FAIL", "WARN", "FAIL"]
    assert "0.5 < min 0.9" in results[0].message and exit_code(results) == 1


def test_baseline_rules_catch_regressions_and_allow_improvements(tmp_path):
    policy = load_policy(
        write_policy(
            tmp_path,
            """
rules:
  - name: no-accuracy-regression
    metric: card.true_labels_test_accuracy
    max_decrease: 0.01
  - name: capacity-grows-at-most-10-percent
    metric: memorization.largest_fitted_size
    max_increase: 0.1
    relative: true
""",
        )
    )
    baseline = make_report(true_test=0.95, memorized=500)
    assert [r.status for r in evaluate(policy, make_report(true_test=0.97, memorized=540), baseline)] == ["PASS", "PASS"]
    regressed = evaluate(policy, make_report(true_test=0.93, memorized=600), baseline)
    assert [r.status for r in regressed] == ["FAIL", "FAIL"]
    assert "fell by 0.02" in regressed[0].message and "allowed 0.1 of the baseline" in regressed[1].message
    first_run = evaluate(policy, make_report())  # no baseline yet: skipped with a note, not an error
    assert {r.status for r in first_run} == {"SKIP"}
    assert exit_code(first_run) == 0 and exit_code(first_run, strict=True) == 0
    assert all("no --baseline" in r.message for r in first_run)
    suite = ElementTree.fromstring(junit_xml(first_run))
    assert suite.get("skipped") == "2" and len(list(suite.iter("skipped"))) == 2


def test_a_metric_missing_from_the_report_is_an_error_not_a_pass(tmp_path):
    policy = load_policy(write_policy(tmp_path, "rules: [{name: r, metric: rademacher.estimate, max: 0.5}]"))
    [result] = evaluate(policy, make_report())
    assert result.status == "ERROR" and "rademacher" in result.message


def test_a_metric_missing_under_a_warn_rule_warns(tmp_path):
    """Nothing fitted means no slowdown in the report: a warn rule on it must not break CI (exit 2)."""
    text = "rules: [{name: r, metric: card.random_labels_slowdown, min: 1.5, severity: warn}]"
    policy = load_policy(write_policy(tmp_path, text))
    report = make_report()
    report.card.ClearField("random_labels_slowdown")
    [result] = evaluate(policy, report)
    assert result.status == "WARN" and "random_labels_slowdown" in result.message
    assert exit_code([result]) == 0 and exit_code([result], strict=True) == 1


def test_metric_paths_select_conditions_whose_label_has_dots_and_parentheses():
    """docs/ci.md lists conditions[corrupt(0.5)]: the dot inside the brackets is not a separator."""
    report = make_report()
    corrupt = report.randomization.conditions.add(label="corrupt(0.5)")
    corrupt.test_accuracy.mean = 0.6
    data = report_dict(report)
    assert metric_value(data, "randomization.conditions[corrupt(0.5)].test_accuracy.mean") == 0.6
    assert metric_value(data, "randomization.conditions[label=corrupt(0.5)].test_accuracy.mean") == 0.6
    with pytest.raises(KeyError, match="no element"):
        metric_value(data, "randomization.conditions[corrupt(0.2)].test_accuracy.mean")


@pytest.mark.parametrize(
    "text, where",
    [
        ("rules: [{name: a, metric: card.x}]", "rules[0] (name: a)"),
        ("rules: [{name: a, metric: card.x, min: 1}, {name: b, metric: card.y, max_decrease: -1}]", "rules[1] (name: b).max_decrease"),
        ("rules: [{name: a, metric: card.x, min: 1, colour: red}]", "rules[0] (name: a).colour"),
        ("rules: [{name: a, metric: card.x, min: 1}, {name: a, metric: card.y, min: 1}]", "unique"),
        ("rules: []", "rules"),
        ("rules: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_policies_name_the_rule_and_field(tmp_path, text, where):
    with pytest.raises(EffcapError) as info:
        load_policy(write_policy(tmp_path, text))
    assert where in str(info.value)


def test_junit_and_markdown_outputs(tmp_path):
    policy = load_policy(
        write_policy(tmp_path, "rules: [{name: ok, metric: card.random_labels_slowdown, min: 1}, {name: bad, metric: card.random_labels_slowdown, max: 1}, {name: err, metric: card.nope, max: 1}]")
    )
    results = evaluate(policy, make_report())
    suite = ElementTree.fromstring(junit_xml(results))
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["ok"].find("failure") is None and cases["bad"].find("failure") is not None and cases["err"].find("error") is not None
    summary = markdown_summary(results, "violated")
    assert "| ❌ | bad |" in summary and "| ✅ | ok |" in summary


def test_diff_lists_changed_metrics_only():
    changes = dict((p, (a, b)) for p, a, b in changed_metrics(make_report(), make_report(true_test=0.9)))
    assert changes["card.true_labels_test_accuracy"] == (0.95, 0.9)
    assert changes["randomization.conditions[true].test_accuracy.mean"] == (0.95, 0.9)
    assert "card.random_labels_slowdown" not in changes
