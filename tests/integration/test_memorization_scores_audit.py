"""memorization_scores through the real server and CLI: the same scores as --local, the raw archive
downloaded with --scores-out, a policy gating on the share of memorised examples, bad specs refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

CLI = [sys.executable, "-m", "effcap.clients.cli"]
QUICK = ["--analyses", "memorization_scores", "--scores-models", "4", "--scores-top", "3", "--epochs", "3", "--lr", "0.1", "--no-progress"]


def effcap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_scores_through_the_server_match_local_and_gate_a_policy(server, demo_files, tmp_path):
    model, data = demo_files
    remote = effcap("audit", str(model), "--data", str(data), "--server", server.address, "--json", "--scores-out", str(tmp_path / "s.npz"), *QUICK)
    assert remote.returncode == 0, remote.stderr
    local = effcap("audit", str(model), "--data", str(data), "--local", "--json", *QUICK)
    assert local.returncode == 0, local.stderr
    a, b = json.loads(remote.stdout)["memorizationScores"], json.loads(local.stdout)["memorizationScores"]
    assert a["scores"]["sha256"] == b["scores"]["sha256"]  # same seed, same networks, same scores
    assert [e["index"] for e in a["topMemorized"]] == [e["index"] for e in b["topMemorized"]] and len(a["topMemorized"]) == 3
    archive = np.load(tmp_path / "s.npz", allow_pickle=False)
    assert archive["memorization"].shape == (a["trainExamples"],)
    assert np.isclose(np.nanmax(archive["memorization"]), a["topMemorized"][0]["memorization"])
    (tmp_path / "report.json").write_text(remote.stdout)
    share = a.get("shareAbove05", 0.0)
    for limit, expected in ((share - 0.001, 1), (share + 0.001, 0)):  # just below the share: violated; just above: passes
        (tmp_path / "policy.yaml").write_text(f"rules:\n  - name: few memorised\n    metric: memorization_scores.share_above_0_5\n    max: {limit}\n")
        checked = effcap("check", "--report", str(tmp_path / "report.json"), "--policy", str(tmp_path / "policy.yaml"))
        assert checked.returncode == expected, checked.stdout + checked.stderr


def test_a_bad_subset_fraction_is_refused_naming_the_field(server, demo_files):
    model, data = demo_files
    result = effcap("audit", str(model), "--data", str(data), "--server", server.address, *QUICK, "--scores-fraction", "1.5")
    assert result.returncode != 0
    assert "INVALID_ARGUMENT" in result.stderr and "spec.memorization_scores.subset_fraction" in result.stderr
