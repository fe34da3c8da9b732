"""A dataset packed by `effcap data pack`, uploaded and audited through the real server: the whole path users take."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from effcap.capacity.checkpoint import save_checkpoint
from effcap.capacity.models import MLPSpec, build_model

CLI = [sys.executable, "-m", "effcap.clients.cli"]
SIDE = 6


def effcap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def write_image_folder(root: Path, per_class: dict[str, int]) -> None:
    """Two classes of tiny RGB PNGs told apart by brightness: dark (0-99) and bright (156-255)."""
    rng = np.random.default_rng(0)
    for split, count in per_class.items():
        for name, low in (("bright", 156), ("dark", 0)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(low, low + 100, size=(SIDE, SIDE, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


def test_a_packed_image_folder_is_uploaded_and_audited_through_the_server(server, tmp_path):
    write_image_folder(tmp_path / "shades", {"train": 12, "test": 4})
    data = tmp_path / "shades.safetensors"
    packed = effcap("data", "pack", str(tmp_path / "shades"), "-o", str(data))
    assert packed.returncode == 0, packed.stderr
    assert "classes  2: bright, dark" in packed.stdout

    model = tmp_path / "mlp.safetensors"
    architecture = MLPSpec(input_shape=(3, SIDE, SIDE), num_classes=2, hidden_sizes=(16,))
    save_checkpoint(model, architecture, build_model(architecture, seed=0).state_dict())
    quick = [
        "--conditions",
        "true,random",
        "--seeds",
        "1",
        "--epochs",
        "40",
        "--lr",
        "0.1",
        "--lr-decay",
        "1",
        "--batch-size",
        "8",
    ]
    result = effcap(
        "audit", str(model), "--data", str(data), "--server", server.address, "--json", "--no-progress", *quick
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dataset"]["trainExamples"] == 24 and report["dataset"]["testExamples"] == 8
    assert report["dataset"]["numClasses"] == 2 and report["dataset"]["inputShape"] == [3, SIDE, SIDE]
    assert int(report["dataset"]["source"]["artifact"]["sizeBytes"]) == data.stat().st_size
    true = next(c for c in report["randomization"]["conditions"] if c["label"] == "true")
    # Normalised inputs of two well-separated shades: the true labels are fitted and generalise.
    assert true["trainAccuracy"]["mean"] == 1.0 and true["testAccuracy"]["mean"] == 1.0
