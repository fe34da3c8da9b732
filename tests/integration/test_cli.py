"""The `effcap` command as users run it: real subprocesses, exit codes, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from .conftest import QUICK_AUDIT_ARGS as QUICK

CLI = [sys.executable, "-m", "effcap.clients.cli"]


def effcap(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def test_audit_against_the_server_and_locally_print_the_same_numbers(server, demo_files):
    model, data = demo_files
    remote = effcap("audit", str(model), "--data", str(data), "--server", server.address, "--json", *QUICK)
    assert remote.returncode == 0, remote.stderr
    local = effcap("audit", str(model), "--data", str(data), "--local", "--json", *QUICK)
    assert local.returncode == 0, local.stderr
    a, b = json.loads(remote.stdout), json.loads(local.stdout)
    assert a["audit"].startswith("audits/") and "audit" not in b
    pick = lambda r: [(c["label"], c["trainAccuracy"]["mean"], c["testAccuracy"]["mean"]) for c in r["randomization"]["conditions"]]  # noqa: E731
    assert pick(a) == pick(b)
    assert [c["label"] for c in a["randomization"]["conditions"]] == ["true", "random"]


def test_the_text_report_shows_the_capacity_card_and_the_table(server, demo_files):
    model, _ = demo_files
    result = effcap("audit", str(model), "--data", "builtin:digits", "--server", server.address, *QUICK)
    assert result.returncode == 0, result.stderr
    assert "capacity card" in result.stdout and "Randomization test" in result.stdout
    assert "random" in result.stdout and "301,066 parameters" in result.stdout


def test_bad_input_exits_2_with_the_field_named(server, demo_files, tmp_path):
    model, _ = demo_files
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((20, 64), np.float32), y_train=np.arange(20) % 10, x_test=np.zeros((2, 64), np.float32), y_test=np.array([1, 99]))
    result = effcap("audit", str(model), "--data", str(bad), "--server", server.address, *QUICK)
    assert result.returncode == 2
    assert "dataset.y_test" in result.stderr and "DATASET_LABEL_OUT_OF_RANGE" in result.stderr
    assert "Traceback" not in result.stderr
    local = effcap("audit", str(model), "--data", str(bad), "--local", *QUICK)
    assert local.returncode == 2 and "dataset.y_test" in local.stderr and "Traceback" not in local.stderr


def test_unreachable_server_and_bad_words_exit_2(demo_files):
    model, _ = demo_files
    result = effcap("audit", str(model), "--data", "builtin:digits", "--server", "127.0.0.1:1", *QUICK, timeout=60)
    assert result.returncode == 2 and "UNAVAILABLE" in result.stderr
    result = effcap("audit", str(model), "--data", "builtin:digits", "--local", "--conditions", "noisy")
    assert result.returncode == 2 and "unknown condition" in result.stderr
    result = effcap("audit", "missing.safetensors", "--data", "builtin:digits", "--local")
    assert result.returncode == 2 and "no such file" in result.stderr


def test_an_unreadable_architecture_file_exits_2_naming_the_option(demo_files, tmp_path):
    model, _ = demo_files
    (tmp_path / "text.json").write_text("not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    for path, words in [("text.json", "is not JSON"), ("list.json", "must hold a JSON object"), ("missing.json", "cannot read")]:
        result = effcap("audit", str(model), "--data", "builtin:digits", "--local", "--arch", str(tmp_path / path), *QUICK)
        assert result.returncode == 2 and "--arch" in result.stderr and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_rademacher_analysis_through_the_server(server, demo_files, tmp_path):
    model, _ = demo_files
    html = tmp_path / "r.html"
    args = ["--analyses", "rademacher", "--rad-draws", "3", "--rad-radii", "0.01,0.1", "--rad-examples", "300", "--epochs", "60", "--lr", "0.1", "--lr-decay", "1"]
    result = effcap("audit", str(model), "--data", "builtin:digits", "--server", server.address, "--json", "--no-progress", *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["rademacher"]
    assert report["examples"] == 300 and len(report["local"]) == 2 and report["globalEstimate"]["draws"] == 3
    assert {b["name"] for b in report["bounds"]} == {"rademacher_sign_fit", "golowich_frobenius", "bartlett_spectral", "neyshabur_pac_bayes", "pac_bayes_sharpness"}
    assert int(report["sharpness"]["forwardPasses"]) > 0 and report["ntk"]["randomLabels"] > report["ntk"]["trueLabels"]
    assert [layer["name"] for layer in report["layers"]] == ["hidden.0", "hidden.1", "head"]
    rendered = effcap("audit", str(model), "--data", "builtin:digits", "--server", server.address, "--format", "html", "-o", str(html), "--no-progress", *args)
    assert rendered.returncode == 0 and 'data-plot="rademacher-vs-radius"' in html.read_text()
    # The checkpoint as its own initialisation: every distance from init is zero.
    same = effcap("audit", str(model), "--data", "builtin:digits", "--server", server.address, "--json", "--no-progress", "--init-model", str(model), "--rad-no-fit", *args)
    assert same.returncode == 0, same.stderr
    distances = json.loads(same.stdout)["rademacher"]
    assert distances["distanceFromInitFrobenius"] == 0 and distances["distanceFromInitSpectral"] == 0
    bad = effcap("audit", str(model), "--data", "builtin:digits", "--server", server.address, "--analyses", "rademacher", "--rad-radii", "0,1", "--no-progress")
    assert bad.returncode == 2 and "spec.rademacher.relative_radii" in bad.stderr


def test_compressibility_analysis_through_the_server(server, demo_files, tmp_path):
    model, data = demo_files
    html = tmp_path / "c.html"
    args = ["--analyses", "compressibility", "--comp-methods", "magnitude_global,random,quantization", "--no-progress"]
    result = effcap("audit", str(model), "--data", str(data), "--server", server.address, "--json", *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    section = report["compressibility"]
    s_star = {m["method"]: m["sparsity"] for m in section["methods"]}
    assert s_star["magnitude_global"] > s_star.get("random", 0.0)
    assert {p["method"] for p in section["points"]} == {"magnitude_global", "random", "quantization"}
    assert section["bound"]["klBound"] <= section["bound"]["hoeffdingBound"]
    assert report["card"]["compressibility"] == s_star["magnitude_global"]
    assert any("train_set_size" in w for w in report["warnings"])
    rendered = effcap("audit", str(model), "--data", str(data), "--server", server.address, "--format", "html", "-o", str(html), *args)
    assert rendered.returncode == 0 and 'data-plot="accuracy-vs-compression"' in html.read_text() and 'data-plot="layer-sensitivity"' in html.read_text()
    bad = effcap("audit", str(model), "--data", str(data), "--server", server.address, "--analyses", "compressibility", "--comp-methods", "magic", "--no-progress")
    assert bad.returncode == 2 and "spec.compressibility.methods" in bad.stderr


def test_watch_follows_an_audit_created_elsewhere(server, client, demo_files):
    from effcap.protos.v1 import spec_pb2

    from .conftest import digits_spec

    operation = client.create_audit(client.upload(demo_files[0]), spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", seeds=1, epochs=3, seed=77))
    result = effcap("watch", operation.name.removeprefix("audits/"), "--server", server.address, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["audit"] == operation.name
    assert "true seed 0" in result.stderr  # the finished trial, from the event stream
