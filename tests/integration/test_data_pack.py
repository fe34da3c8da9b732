"""A dataset packed by `effcap data pack`, uploaded and audited through the real server: the whole path users take."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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


def _write_mnist(root: Path) -> None:
    from ..unit.test_pack_idx import write_mnist

    write_mnist(root, n_train=20, n_test=10, side=(6, 6))


def _write_cifar10(root: Path) -> None:
    from ..unit.test_pack_cifar import write_cifar10

    write_cifar10(root, batches=(10, 10), n_test=10)


def _write_parquet(root: Path) -> None:
    import pyarrow.parquet as pq

    from ..unit.test_pack_tables import hf_table

    root.mkdir()
    pq.write_table(hf_table(20)[0], root / "train-00000-of-00001.parquet")
    pq.write_table(hf_table(10)[0], root / "test-00000-of-00001.parquet")


@pytest.mark.parametrize(
    "write, shape, classes",
    [(_write_mnist, [1, 6, 6], 10), (_write_cifar10, [3, 32, 32], 10), (_write_parquet, [3, 6, 4], 3)],
    ids=["mnist-idx", "cifar10-binary", "parquet"],
)
def test_every_packed_format_is_uploaded_and_audited_through_the_server(server, tmp_path, write, shape, classes):
    """Each format, written by its own writer, packed by the CLI, then audited: the server reads what was packed."""
    write(tmp_path / "source")
    data = tmp_path / "packed.safetensors"
    packed = effcap("data", "pack", str(tmp_path / "source"), "-o", str(data))
    assert packed.returncode == 0, packed.stderr
    model = tmp_path / "mlp.safetensors"
    architecture = MLPSpec(input_shape=tuple(shape), num_classes=classes, hidden_sizes=(8,))
    save_checkpoint(model, architecture, build_model(architecture, seed=0).state_dict())
    quick = ["--conditions", "true", "--seeds", "1", "--epochs", "2", "--batch-size", "8", "--json", "--no-progress"]
    result = effcap("audit", str(model), "--data", str(data), "--server", server.address, *quick)
    assert result.returncode == 0, result.stderr
    dataset = json.loads(result.stdout)["dataset"]
    assert (dataset["trainExamples"], dataset["testExamples"], dataset["inputShape"]) == (20, 10, shape)
