"""effcap report / check / diff as CI systems run them: real subprocesses, exit codes, files."""

from __future__ import annotations

import json
import subprocess
import sys
from xml.etree import ElementTree

from effcap.clients.policy import load_report
from effcap.clients.render import report_json
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import spec_pb2

from .conftest import QUICK_AUDIT_ARGS as QUICK
from .conftest import digits_spec

CLI = [sys.executable, "-m", "effcap.clients.cli"]
PASSING = """
rules:
  - name: learns-true-labels
    metric: "randomization.conditions[true].test_accuracy.mean"
    min: 0.5
  - name: random-labels-near-chance
    metric: card.random_labels_test_accuracy
    max: 0.3
"""
FAILING = """
rules:
  - name: impossible-accuracy
    metric: card.true_labels_test_accuracy
    min: 1.01
"""
WARNING = """
rules:
  - name: would-like-more
    metric: card.true_labels_test_accuracy
    min: 1.01
    severity: warn
"""
REGRESSION = """
rules:
  - name: no-regression
    metric: card.true_labels_test_accuracy
    max_decrease: 0.01
"""


def effcap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def policy(tmp_path, text, name="policy.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_report_renders_saved_files_and_server_audits_in_every_format(server, saved_report, tmp_path):
    report = load_report(saved_report)
    markdown = effcap("report", saved_report, "--format", "md")
    assert markdown.returncode == 0 and "### Capacity card" in markdown.stdout and "| random |" in markdown.stdout
    assert "Test error against label corruption p: p = 0: " in markdown.stdout and ", p = 1: " in markdown.stdout
    html = tmp_path / "r.html"
    assert effcap("report", saved_report, "--format", "html", "-o", html).returncode == 0
    assert "<svg" in html.read_text() and "Capacity card" in html.read_text()
    from_server = effcap("report", report.audit, "--server", server.address, "--format", "json")
    assert from_server.returncode == 0
    assert json.loads(from_server.stdout) == json.loads(report_json(report))
    missing = effcap("report", "audits/unknown", "--server", server.address)
    assert missing.returncode == 2 and "AUDIT_NOT_FOUND" in missing.stderr


def test_check_exit_codes_and_ci_outputs(saved_report, tmp_path):
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    ok = effcap("check", "--policy", policy(tmp_path, PASSING), "--report", saved_report, "--junit-xml", junit, "--markdown", summary)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ElementTree.parse(junit).getroot().get("failures") == "0"
    assert "passed" in summary.read_text() and "learns-true-labels" in summary.read_text()

    failed = effcap("check", "--policy", policy(tmp_path, FAILING), "--report", saved_report, "--junit-xml", junit)
    assert failed.returncode == 1 and "impossible-accuracy" in failed.stdout
    assert ElementTree.parse(junit).getroot().get("failures") == "1"

    warned = effcap("check", "--policy", policy(tmp_path, WARNING), "--report", saved_report)
    assert warned.returncode == 0 and "WARN" in warned.stdout
    assert effcap("check", "--policy", policy(tmp_path, WARNING), "--report", saved_report, "--strict").returncode == 1

    invalid = effcap("check", "--policy", policy(tmp_path, "rules: [{name: x, metric: card.a}]"), "--report", saved_report)
    assert invalid.returncode == 2 and "rules[0] (name: x)" in invalid.stderr


def test_check_against_a_baseline_catches_a_regression(saved_report, tmp_path):
    better = load_report(saved_report)
    better.card.true_labels_test_accuracy += 0.05
    baseline = tmp_path / "baseline.json"
    baseline.write_text(report_json(better))
    regressed = effcap("check", "--policy", policy(tmp_path, REGRESSION), "--report", saved_report, "--baseline", baseline)
    assert regressed.returncode == 1 and "fell by 0.05" in regressed.stdout
    improved = effcap("check", "--policy", policy(tmp_path, REGRESSION), "--report", baseline, "--baseline", saved_report)
    assert improved.returncode == 0
    no_baseline = effcap("check", "--policy", policy(tmp_path, REGRESSION), "--report", saved_report)
    # A first run has no baseline yet: the rule is skipped with a note (issue 16), not an error.
    assert no_baseline.returncode == 0 and "SKIP" in no_baseline.stdout and "--baseline" in no_baseline.stdout

    diff = effcap("diff", baseline, saved_report)
    assert diff.returncode == 0 and "card.true_labels_test_accuracy" in diff.stdout
    assert effcap("diff", baseline, saved_report, "--policy", policy(tmp_path, REGRESSION)).returncode == 1


def test_check_runs_the_audit_itself_and_saves_the_report(server, demo_files, tmp_path):
    saved = tmp_path / "audited.json"
    result = effcap("check", demo_files[0], "--data", "builtin:digits", "--server", server.address, "--policy", policy(tmp_path, PASSING), "--save-report", saved, *QUICK)
    assert result.returncode == 0, result.stdout + result.stderr
    assert load_report(saved).randomization.conditions[0].label == "true"
    unreachable = effcap("check", demo_files[0], "--data", "builtin:digits", "--server", "127.0.0.1:1", "--policy", policy(tmp_path, PASSING), *QUICK)
    assert unreachable.returncode == 2


def test_identical_audits_return_the_cached_report_at_once(client: EffcapClient, demo_files):
    model = client.upload(demo_files[0])
    spec = digits_spec("true", seeds=1, epochs=2, seed=4242)
    first = client.wait(client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), spec).name)
    again = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), spec)
    assert again.done and again.name == first.name and client.report_of(again) == client.report_of(first)
    fresh = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), spec, skip_cache=True)
    assert fresh.name != first.name
    client.wait(fresh.name)
