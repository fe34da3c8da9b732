"""What the `effcap` command prints outside a terminal: text as written, whole lines, clear diffs (issue 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from effcap.clients.render import report_json
from effcap.protos.v1 import report_pb2, spec_pb2

CLI = [sys.executable, "-m", "effcap.clients.cli"]
LABELS = (
    ("true", spec_pb2.CONDITION_KIND_TRUE_LABELS, 0.0),
    ("corrupt(0.5)", spec_pb2.CONDITION_KIND_CORRUPT_LABELS, 0.5),
    ("random", spec_pb2.CONDITION_KIND_RANDOM_LABELS, 0.0),
)


def effcap(*args: str, code: str = "pass") -> subprocess.CompletedProcess:
    """The CLI in a subprocess whose output is a pipe, as in CI; `code` runs first (e.g. to hide torch)."""
    program = f"import sys; {code}; from effcap.clients.cli import main; sys.exit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)


def make_report(test_accuracy: float, family: str = "mlp", parameters: int = 301_066) -> report_pb2.AuditReport:
    report = report_pb2.AuditReport()
    report.model.family, report.model.parameter_count = family, parameters
    report.dataset.source.builtin = "digits"
    report.spec.randomization.seeds_per_condition = 1
    compressibility = report.compressibility
    for method, sparsity in (("magnitude_global", 0.9), ("random", 0.3)):
        compressibility.methods.add(method=method, sparsity=sparsity * test_accuracy, compression_ratio=3.0)
    report.spec.compressibility.tolerance = 0.01
    for label, kind, corruption in LABELS:
        c = report.randomization.conditions.add(label=label)
        c.condition.kind, c.condition.corruption = kind, corruption
        c.test_accuracy.mean = test_accuracy if label == "true" else test_accuracy / 2
        c.train_accuracy.mean = 1.0
    return report


def save(report: report_pb2.AuditReport, path: Path) -> Path:
    path.write_text(report_json(report))
    return path


def test_diff_prints_bracketed_labels_as_written(tmp_path):
    result = effcap(
        "diff", str(save(make_report(0.9), tmp_path / "a.json")), str(save(make_report(0.8), tmp_path / "b.json"))
    )
    assert result.returncode == 0, result.stderr
    for label in ("true", "corrupt(0.5)", "random"):
        assert f"randomization.conditions[{label}].test_accuracy.mean" in result.stdout, result.stdout


def test_diff_labels_list_elements_says_when_nothing_changed_and_when_reports_are_unrelated(tmp_path):
    a, b = save(make_report(0.9), tmp_path / "a.json"), save(make_report(0.8), tmp_path / "b.json")
    changed = effcap("diff", str(a), str(b)).stdout
    assert "compressibility.methods[method=magnitude_global].sparsity" in changed and "methods[0]" not in changed
    same = effcap("diff", str(a), str(a))
    assert same.returncode == 0 and "No metric changed." in same.stdout and "metric(s) changed" not in same.stdout
    other = save(make_report(0.5, family="lenet5", parameters=61_706), tmp_path / "c.json")
    unrelated = effcap("diff", str(a), str(other))
    assert (
        unrelated.returncode == 0
        and "unrelated" in unrelated.stdout
        and "mlp with 301,066 parameters vs lenet5" in unrelated.stdout
    )
    assert "metric(s) changed" not in unrelated.stdout


def test_output_to_a_pipe_is_not_folded_at_80_columns(tmp_path):
    rule = "the-random-labels-must-stay-at-chance-on-the-test-split-or-the-splits-leak-into-each-other"
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"rules: [{{name: {rule}, metric: card.random_labels_test_accuracy, max: 0.2}}]")
    report = make_report(0.9)
    report.card.random_labels_test_accuracy = 0.1
    report.card.random_labels_train_accuracy = 1.0
    warning = "a warning that is longer than eighty columns and used to be folded in the middle of a word " * 2
    report.warnings.append(warning.strip())
    result = effcap("check", "--report", str(save(report, tmp_path / "r.json")), "--policy", str(policy))
    assert result.returncode == 0, result.stderr
    assert rule in result.stdout
    text = effcap("report", str(tmp_path / "r.json"))
    assert text.returncode == 0 and f"warning: {warning.strip()}" in text.stdout
    assert "Memorises random labels: 100.0% train accuracy on random labels, 10.0% test (chance 0.0%)." in text.stdout


def test_commands_that_need_the_library_name_the_server_extra_on_a_light_install(tmp_path):
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"never read: the extras are checked first")
    local = ["audit", str(model), "--data", "builtin:digits", "--local"]
    for command in (["serve", "--data-dir", str(tmp_path / "d")], ["demo", "--work-dir", str(tmp_path / "w")], local):
        result = effcap(*command, code="sys.modules['torch'] = None")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "pip install 'effcap[server]'" in result.stderr


def test_report_of_a_missing_file_says_so_instead_of_asking_a_server(tmp_path):
    for source in ("missing.json", str(tmp_path / "missing.json"), "reports/last"):
        result = effcap("report", source, "--server", "127.0.0.1:1")
        assert result.returncode == 2 and f"{source}: no such file" in result.stderr, result.stderr
        assert "audits/" not in result.stderr.split("(")[0]


def test_audit_help_lists_every_analysis():
    result = subprocess.run(
        [*CLI, "audit", "--help"], capture_output=True, text=True, timeout=60, env={"COLUMNS": "300", "PATH": ""}
    )
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("--analyses ANALYSES"))
    for analysis in ("randomization", "memorization", "rademacher", "compressibility", "memorization_scores"):
        assert analysis in line


def test_the_documented_ci_policy_passes_a_first_run_without_a_baseline(tmp_path):
    """docs/ci.md passes --baseline only when one exists; examples/policy.yaml has a baseline rule."""
    report = make_report(0.95)
    report.card.random_labels_test_accuracy = 0.1
    report.card.true_labels_test_accuracy = 0.95  # no random_labels_slowdown: nothing fitted (a warn rule)
    policy = Path(__file__).parents[2] / "examples" / "policy.yaml"
    junit = tmp_path / "junit.xml"
    result = effcap(
        "check", "--report", str(save(report, tmp_path / "r.json")), "--policy", str(policy), "--junit-xml", str(junit)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIP" in result.stdout and "no --baseline given" in result.stdout and "WARN" in result.stdout
    assert 'skipped="1"' in junit.read_text()


def test_an_unreachable_server_gets_a_hint_to_start_one():
    result = effcap("report", "0123abcd", "--server", "127.0.0.1:1")
    assert result.returncode == 2 and "UNAVAILABLE" in result.stderr
    # report has no --local (audit and check do: tests/unit/test_unreachable_hint.py)
    assert "effcap serve" in result.stderr and "--local" not in result.stderr
