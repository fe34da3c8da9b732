"""The dry-run's counts and times, against counts by hand and a calibration given as numbers."""

from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console

from effcap.capacity.calibration import Calibration, cached_calibration, measure_calibration
from effcap.capacity.estimate import EXPECTED_EPOCHS_HARD, EXPECTED_EPOCHS_TRUE, estimate_audit
from effcap.capacity.specs import AuditSpec
from effcap.clients.estimate_view import duration
from effcap.clients.progress_view import ProgressView, progress_line

CALIBRATION = Calibration("cpu", "x", 1, seconds_per_step=0.002, seconds_per_multiply_add=1e-9)


def test_randomization_counts_trials_steps_and_seconds_by_hand():
    spec = AuditSpec.model_validate(
        {
            "randomization": {
                "conditions": [{"kind": "true_labels"}, {"kind": "random_labels"}],
                "seeds_per_condition": 3,
            }
        }
    )
    (estimate,) = estimate_audit(spec, 1297, 500, multiply_adds=1000, calibration=CALIBRATION)
    per_step = 0.002 + 1e-9 * 128 * 1000
    # 6 trials x 455 epochs x 11 steps, plus the probe: 3 rates x 10 epochs x 11 steps.
    assert (estimate.trials, estimate.sgd_steps) == (6 + 3, 6 * 455 * 11 + 3 * 10 * 11)
    assert estimate.seconds == pytest.approx(estimate.sgd_steps * per_step)
    # Expected: true labels stop after 25 epochs, random after 100 (both within the 455-epoch budget).
    expected_steps = 3 * (EXPECTED_EPOCHS_TRUE + EXPECTED_EPOCHS_HARD) * 11 + 3 * 10 * 11
    assert estimate.expected_seconds == pytest.approx(expected_steps * per_step)
    assert estimate.training_examples == (6 * 455 + 3 * 10) * 1297


def test_the_expected_time_never_exceeds_the_budget():
    spec = AuditSpec.model_validate({"randomization": {"training": {"max_epochs": 3, "learning_rate": 0.1}}})
    (estimate,) = estimate_audit(spec, 1297, 500, multiply_adds=1000, calibration=CALIBRATION)
    assert estimate.expected_seconds == pytest.approx(estimate.seconds)


def test_calibration_is_measured_once_and_cached(tmp_path):
    first = cached_calibration(tmp_path, torch.device("cpu"))
    assert first.seconds_per_step > 0 and first.seconds_per_multiply_add > 0
    stored = (tmp_path / "calibration.json").read_text()
    assert cached_calibration(tmp_path, torch.device("cpu")) == first  # read back, not measured again
    assert (tmp_path / "calibration.json").read_text() == stored


def test_a_calibration_is_kept_per_openmp_wait_setting(tmp_path, monkeypatch):
    # conftest runs the suite with OMP_WAIT_POLICY=PASSIVE; a worker that spins steps faster, so it measures anew.
    cached_calibration(tmp_path, torch.device("cpu"))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    cached_calibration(tmp_path, torch.device("cpu"))
    keys = json.loads((tmp_path / "calibration.json").read_text()).keys()
    assert sorted(key.rsplit("|", 1)[1] for key in keys) == ["waits GOMP_SPINCOUNT=10000", "waits OMP_WAIT_POLICY=PASSIVE"]


def test_calibrated_step_time_grows_with_the_work():
    calibration = measure_calibration(torch.device("cpu"))
    assert calibration.step_seconds(128, 400_000) > calibration.step_seconds(128, 1_000) > 0


def test_durations_read_as_a_person_plans():
    assert [duration(s) for s in (4.4, 200, 7500)] == ["4 s", "3 min 20 s", "2 h 05 min"]


def test_progress_outside_a_terminal_is_one_line_every_few_seconds():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with ProgressView(console, interval_s=3600) as view:
        view.progress("randomization: random seed 0 finished", 1, 4, 0.25)
        view.progress("randomization: random seed 1 finished", 2, 4, 0.5)  # within the interval: no line
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "randomization: random seed 0 finished | trials 1/4 | 25% | elapsed 0:00"
    )
    assert (
        progress_line("randomization: epoch 3", 3, 6, 0.5, 65, eta_s=65)
        == "randomization: epoch 3 | trials 3/6 | 50% | elapsed 1:05 | ETA 1:05"
    )
    assert progress_line("queued: position 2", 0, 0, 0.0, 3) == "queued: position 2 | 0% | elapsed 0:03"
