"""docs/notebook.md runs as written: its python blocks as the cells of one notebook, its effcap commands in a shell."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import mlflow
from mlflow import MlflowClient

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "notebook.md"
BLOCK = re.compile(r"^```(?P<language>\w+)\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [m.group("code") for m in BLOCK.finditer(GUIDE.read_text()) if m.group("language") == language]


def test_the_notebook_guide_runs_as_written(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    # mlflow keeps the active experiment in process state: another test's experiment id would not exist here.
    mlflow.set_experiment("effcap-docs")
    cells = _blocks("python")
    assert len(cells) >= 5
    namespace: dict = {}
    for cell in cells:
        exec(compile(cell, str(GUIDE), "exec"), namespace)  # noqa: S102 - our own documentation
    result = namespace["result"]
    assert {layer.name for layer in result.report.weights.layers} == {"1", "3"}  # the two Linears of the Sequential
    assert [c.label for c in result.report.randomization.conditions] == ["true", "random"]
    assert Path("report.json").is_file() and Path("mlp.safetensors").is_file()
    logged = mlflow.get_run(namespace["run"].info.run_id)
    assert "effcap/report.html" in {a.path for a in MlflowClient().list_artifacts(logged.info.run_id, "effcap")}
    commands = [line for block in _blocks("sh") for line in block.splitlines() if line.startswith("effcap ")]
    assert len(commands) >= 2
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "effcap.clients.cli", *shlex.split(command)[1:]],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{command}: {done.stderr}"
    assert len(MlflowClient().search_runs([logged.info.experiment_id])) == 2  # the notebook's run and the check's
