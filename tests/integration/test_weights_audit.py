"""The weights analysis through the real server and CLI: no data needed, the same numbers as --local, a policy on α,
and a request without data refused (naming the field) when an analysis needs data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from effcap.clients.errors import EffcapError
from effcap.protos.v1 import spec_pb2

CLI = [sys.executable, "-m", "effcap.clients.cli"]


def effcap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_weights_need_no_data_and_match_local(server, demo_files, tmp_path):
    model, _ = demo_files
    remote = effcap("audit", str(model), "--analyses", "weights", "--server", server.address, "--json", "--no-progress")
    assert remote.returncode == 0, remote.stderr
    local = effcap("audit", str(model), "--analyses", "weights", "--local", "--json", "--no-progress")
    assert local.returncode == 0, local.stderr
    a, b = json.loads(remote.stdout), json.loads(local.stdout)
    assert a["weights"] == b["weights"] and "dataset" not in a
    assert [layer["name"] for layer in a["weights"]["layers"]] == ["hidden.0", "hidden.1", "head"]
    (tmp_path / "report.json").write_text(remote.stdout)
    html = effcap("report", str(tmp_path / "report.json"), "--format", "html")
    assert 'data-table="weight-spectra"' in html.stdout and "reads the checkpoint alone" in html.stdout
    alpha = a["weights"]["meanAlpha"]
    for limit, expected in ((alpha + 0.01, 0), (alpha - 0.01, 1)):  # a ceiling on the mean α, just above / below it
        (tmp_path / "policy.yaml").write_text(
            f"rules:\n  - {{name: alpha, metric: weights.mean_alpha, max: {limit}}}\n"
        )
        checked = effcap("check", "--report", str(tmp_path / "report.json"), "--policy", str(tmp_path / "policy.yaml"))
        assert checked.returncode == expected, checked.stdout + checked.stderr


def test_an_audit_that_needs_data_is_refused_without_it(client, demo_files):
    digest = client.upload(demo_files[0])
    spec = spec_pb2.AuditSpec(randomization=spec_pb2.RandomizationSpec(), weights=spec_pb2.WeightsSpec())
    with pytest.raises(EffcapError) as error:
        client.create_audit(digest, spec_pb2.DatasetRef(), spec)
    assert (error.value.code, error.value.reason, error.value.field) == (
        "INVALID_ARGUMENT",
        "FIELD_REQUIRED",
        "dataset",
    )
    cli = effcap("audit", str(demo_files[0]), "--analyses", "weights,randomization", "--server", client.address)
    assert cli.returncode == 2 and "--data is required" in cli.stderr
