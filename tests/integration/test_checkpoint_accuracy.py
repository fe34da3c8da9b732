"""The report gives the checkpoint's own test accuracy beside that of freshly trained networks (issue 16, defect 11)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch

from effcap.capacity.checkpoint import load_checkpoint
from effcap.capacity.models import build_model

from .conftest import QUICK_AUDIT_ARGS as QUICK

CLI = [sys.executable, "-m", "effcap.clients.cli"]


def test_the_checkpoints_own_accuracy_is_reported_and_told_apart(server, demo_files):
    model_path, data_path = demo_files
    args = ["audit", str(model_path), "--data", str(data_path), "--server", server.address, *QUICK]
    result = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # Brute force: the checkpoint's predictions on the file's test split, one example at a time.
    checkpoint = load_checkpoint(model_path)
    model = build_model(checkpoint.architecture)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    with np.load(data_path) as data:
        x, y = data["x_test"], data["y_test"]
    with torch.no_grad():
        correct = sum(int(model(torch.from_numpy(x[i : i + 1])).argmax()) == int(y[i]) for i in range(len(x)))
    own = report["model"]["checkpointTestAccuracy"]
    assert abs(own - correct / len(x)) < 1e-12
    fresh = report["card"]["trueLabelsTestAccuracy"]
    text = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300).stdout
    line = f"of networks trained afresh by this audit: {100 * fresh:.1f}%; the checkpoint itself: {100 * own:.1f}%."
    assert line in text, text
