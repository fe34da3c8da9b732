"""A user's first hour (issue 16): defaults that fit, the cost before the wait, progress outside a terminal."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import audit_pb2, spec_pb2

from .conftest import ServerProcess, wait_for
from .test_lifecycle import ENDLESS

CLI = [sys.executable, "-m", "effcap.clients.cli"]
README = Path(__file__).resolve().parents[2] / "README.md"


def effcap(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def readme_digits_audits() -> list[list[str]]:
    """The README's `effcap audit ... --data builtin:digits ...` commands, as argument lists after `effcap`."""
    commands = []
    for line in README.read_text().splitlines():
        words = shlex.split(line.split(" #", 1)[0]) if line.startswith("effcap audit") else []
        if "builtin:digits" in words:
            commands.append(words[1:])
    return commands


def local_json_report(words: list[str], model: Path, tmp_path: Path) -> dict:
    """Run a README command verbatim but for the checkpoint's path, locally, and read its report as JSON."""
    args = [str(model) if w == "model.safetensors" else w for w in words]
    args = [a for a in args if a != "--json"]
    if "--format" in args:  # the README's HTML example: same audit, report as JSON for the test
        at = args.index("--format")
        del args[at : at + 2]
    if "-o" in args:
        del args[args.index("-o") : args.index("-o") + 2]
    out = tmp_path / "report.json"
    result = effcap(*args, "--local", "--no-progress", "--format", "json", "-o", str(out), timeout=3600)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_the_readme_has_digits_examples_to_check():
    assert len(readme_digits_audits()) >= 2


def test_standard_defaults_memorise_random_digits_labels(demo_files, tmp_path):
    """The fast representative of the README examples: random labels, defaults for every training option."""
    report = local_json_report(
        ["audit", "model.safetensors", "--data", "builtin:digits", "--conditions", "random", "--seeds", "1"],
        demo_files[0],
        tmp_path,
    )
    (random_labels,) = report["randomization"]["conditions"]
    assert random_labels["trainAccuracy"]["mean"] == 1.0 and random_labels["fittedFraction"] == 1.0
    assert report["spec"]["preset"] == "standard"
    chosen = "\n".join(report["defaultsChosen"])
    assert "chosen by a 110-step probe on true labels" in chosen and "455 epochs = 5005 SGD steps" in chosen
    assert report["spec"]["randomization"]["training"]["learningRate"] in (0.1, 0.03, 0.01)
    assert not report.get("warnings")


@pytest.mark.slow
@pytest.mark.parametrize("words", readme_digits_audits(), ids=lambda w: " ".join(w[3:])[:60])
def test_each_readme_digits_example_fits_random_labels_with_its_defaults(words, demo_files, tmp_path):
    report = local_json_report(words, demo_files[0], tmp_path)
    conditions = {c["label"]: c for c in report["randomization"]["conditions"]}
    assert conditions["random"]["trainAccuracy"]["mean"] == 1.0
    assert all(c["fittedFraction"] == 1.0 for c in conditions.values()), conditions


def test_dry_run_prints_the_cost_and_caches_the_calibration(server: ServerProcess, demo_files):
    model, _ = demo_files
    args = [
        "audit",
        str(model),
        "--data",
        "builtin:digits",
        "--conditions",
        "true,random",
        "--seeds",
        "2",
        "--server",
        server.address,
    ]
    first = effcap(*args, "--dry-run")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    # 4 trials and the probe's 3 candidates; 4 x 455 x 11 + 3 x 10 x 11 SGD steps.
    assert lines[1].split()[:3] == ["randomization", "7", f"{4 * 455 * 11 + 3 * 10 * 11:,}"]
    assert "calibrated on cpu" in first.stdout and "learning rate to be chosen by a short probe" in first.stdout
    calibration = json.loads((server.data_dir / "calibration.json").read_text())
    assert len(calibration) == 1
    with EffcapClient(server.address) as client:
        audits_before = len(client.audits.ListAudits(audit_pb2.ListAuditsRequest()).audits)
        estimate = client.estimate_audit(
            client.upload(model),
            spec_pb2.DatasetRef(builtin="digits"),
            spec_pb2.AuditSpec(preset="quick", randomization={}),
        )
        assert len(client.audits.ListAudits(audit_pb2.ListAuditsRequest()).audits) == audits_before  # nothing queued
    (randomization,) = estimate.analyses
    assert randomization.trials == 2 + 3 and 0 < randomization.expected_seconds <= randomization.estimated_seconds
    assert estimate.spec.preset == "quick" and estimate.max_training_examples == 10**10
    assert json.loads((server.data_dir / "calibration.json").read_text()) == calibration  # measured once


def test_an_estimate_of_a_bad_spec_names_the_field(server: ServerProcess, demo_files):
    with EffcapClient(server.address) as client:
        model = client.upload(demo_files[0])
        spec = spec_pb2.AuditSpec(preset="fast", randomization={})
        with pytest.raises(grpc.RpcError) as error:
            client.audits.EstimateAudit(
                audit_pb2.EstimateAuditRequest(model=model, dataset=spec_pb2.DatasetRef(builtin="digits"), spec=spec)
            )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.preset" in error.value.details() and "Traceback" not in error.value.details()


def test_a_queued_audit_streams_its_place_in_line(tmp_path, demo_files):
    server = ServerProcess(tmp_path / "server", "--max-running-audits", "1").start()
    try:
        with EffcapClient(server.address) as client:
            model = client.upload(demo_files[0])
            digits = spec_pb2.DatasetRef(builtin="digits")
            first = client.create_audit(model, digits, ENDLESS)
            wait_for(lambda: client.get_audit(first.name).state == audit_pb2.AUDIT_STATE_RUNNING)
            second = client.create_audit(model, digits, spec_pb2.AuditSpec(seed=1, randomization=ENDLESS.randomization))
            events = client.events(second.name)
            positions = []
            for event in events:
                if event.progress.queue_position:
                    positions.append((event.progress.queue_position, event.progress.stage))
                    break
            events.close()
            assert positions == [(1, "queued: position 1")]
            client.cancel(second.name)
            client.cancel(first.name)
    finally:
        server.stop()


def test_progress_outside_a_terminal_prints_stage_trials_and_eta(server: ServerProcess, demo_files):
    model, _ = demo_files
    # A learning rate too small to fit random labels: all 120 epochs train, so the lines (5 s apart) outlast the
    # first epoch by long enough for an ETA.
    args = ["--conditions", "true,random", "--seeds", "1", "--epochs", "120", "--lr", "0.01"]
    result = effcap("audit", str(model), "--data", "builtin:digits", "--server", server.address, "--no-cache", *args)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if " | elapsed " in line]
    assert lines, result.stderr
    assert "ETA" not in lines[0], lines  # the worker's start is no progress to extrapolate from
    assert any("randomization" in line and "trials " in line and "ETA" in line for line in lines), lines
