"""The notebook API against a real server, and MLflow logging into a real local file store (CLI and API)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import pytest
from mlflow import MlflowClient

from effcap.capacity.models import build_model, parse_architecture
from effcap.clients.policy import load_report
from effcap.notebook import audit

CLI = [sys.executable, "-m", "effcap.clients.cli"]
MLP = {"family": "mlp", "input_shape": [1, 8, 8], "num_classes": 10, "hidden_sizes": [48]}


@pytest.fixture
def tracking(tmp_path, monkeypatch) -> str:
    """A local file store, for this process and the CLI subprocesses (MLflow 3 asks to opt in to file stores)."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("effcap-tests")
    return uri


def _only_run(client: MlflowClient):
    runs = client.search_runs([mlflow.get_experiment_by_name("effcap-tests").experiment_id])
    assert len(runs) == 1
    return runs[0]


def test_the_api_on_a_server_gives_the_local_numbers(server) -> None:
    model = build_model(parse_architecture(MLP), seed=1)
    remote = audit(model, "builtin:digits", analyses="weights", server=server.address, progress=False)
    local = audit(model, "builtin:digits", analyses="weights", progress=False, threads=1)
    assert remote.report.audit.startswith("audits/") and not local.report.audit
    assert remote.report.weights == local.report.weights


def test_the_cli_logs_card_metrics_and_report_artifacts_to_the_run_mlflow_run_id_names(tracking, demo_files, tmp_path):
    model, _ = demo_files
    with mlflow.start_run() as run:  # a training run the audit should join, as a CI job's MLFLOW_RUN_ID does
        mlflow.log_metric("train_loss", 0.1)
    env = {**os.environ, "MLFLOW_RUN_ID": run.info.run_id}
    flags = ["--data", "builtin:digits", "--local", "--analyses", "weights,randomization", "--conditions", "random"]
    flags += ["--seeds", "1", "--epochs", "2", "--no-progress", "--json", "--mlflow"]
    done = subprocess.run([*CLI, "audit", str(model), *flags], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert f"logged to MLflow run {run.info.run_id}" in done.stderr
    report = json.loads(done.stdout)
    client = MlflowClient()
    logged = _only_run(client)
    assert logged.info.run_id == run.info.run_id and logged.data.metrics["train_loss"] == 0.1
    card = report["card"]
    assert logged.data.metrics["effcap.card.random_labels_train_accuracy"] == pytest.approx(
        card["randomLabelsTrainAccuracy"]
    )
    assert logged.data.metrics["effcap.weights.mean_alpha"] == pytest.approx(report["weights"]["meanAlpha"])
    assert logged.data.tags["effcap.analyses"] == "randomization,weights"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "effcap")}
    assert artifacts == {"effcap/report.json", "effcap/report.html"}
    stored = client.download_artifacts(run.info.run_id, "effcap/report.json", str(tmp_path))
    assert json.loads(open(stored).read()) == report


def test_check_logs_each_rules_verdict(tracking, saved_report, tmp_path):
    accuracy = load_report(saved_report).card.random_labels_train_accuracy
    (tmp_path / "policy.yaml").write_text(
        "rules:\n"
        f"  - {{name: memorises, metric: card.random_labels_train_accuracy, min: {accuracy - 0.01}}}\n"
        f"  - {{name: does not memorise, metric: card.random_labels_train_accuracy, max: {accuracy - 0.01}, severity: warn}}\n"
    )
    args = ["check", "--report", str(saved_report), "--policy", str(tmp_path / "policy.yaml"), "--mlflow"]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    client = MlflowClient()
    run = _only_run(client)  # no active run: one was started (and ended) for the check
    assert (
        run.data.metrics["effcap.policy.memorises"] == 1.0
        and run.data.metrics["effcap.policy.does not memorise"] == 0.5
    )
    assert (
        run.data.tags["effcap.policy.verdict"] == "passed"
        and run.data.tags["effcap.policy.does not memorise"] == "WARN"
    )
    verdicts = json.loads(open(client.download_artifacts(run.info.run_id, "effcap/policy.json", str(tmp_path))).read())
    assert [v["status"] for v in verdicts] == ["PASS", "WARN"]


def test_the_api_logs_into_the_active_run(tracking):
    model = build_model(parse_architecture(MLP), seed=2)
    with mlflow.start_run() as run:
        result = audit(model, "builtin:digits", analyses="weights", log_to="mlflow", progress=False, threads=1)
    logged = MlflowClient().get_run(run.info.run_id)
    assert logged.data.metrics["effcap.weights.layers_fitted"] == result.report.weights.layers_fitted == 2
    assert logged.data.metrics["effcap.card.chance_accuracy"] == pytest.approx(0.1)
