"""Helpers for the `effcap data pack` tests: run the real CLI, read back what it wrote, check the server's view."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open

from effcap.capacity.data.datasets import load_dataset_file
from effcap.capacity.data.packed_format import NORMALIZATION_KEY, parse_normalization
from effcap.clients.cli import main


@dataclass
class PackRun:
    code: int
    stdout: str  # whitespace collapsed: rich wraps long lines at the captured console's width
    stderr: str
    path: Path

    def arrays(self) -> dict[str, np.ndarray]:
        with safe_open(str(self.path), framework="numpy") as tensors:
            return {key: tensors.get_tensor(key) for key in tensors.keys()}

    def metadata(self) -> dict[str, str]:
        with safe_open(str(self.path), framework="numpy") as tensors:
            return tensors.metadata()


def pack(capsys, source: Path, output: Path, *options: str) -> PackRun:
    """`effcap data pack SOURCE -o OUTPUT OPTIONS`, through the CLI's main, as a user runs it."""
    code = main(["data", "pack", str(source), "-o", str(output), *options])
    captured = capsys.readouterr()
    return PackRun(code, " ".join(captured.out.split()), " ".join(captured.err.split()), output)


def packed(capsys, source: Path, output: Path, *options: str) -> PackRun:
    run = pack(capsys, source, output, *options)
    assert run.code == 0, run.stderr
    return run


def refused(capsys, source: Path, tmp_path: Path, reason: str, *options: str) -> str:
    """The error text of a pack that must fail with exit code 2 and `reason`, writing nothing."""
    output = tmp_path / "refused.safetensors"
    run = pack(capsys, source, output, *options)
    assert run.code == 2, run.stdout
    assert f"[{reason}]" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert not output.exists()
    return run.stderr


def assert_server_reads(
    run: PackRun, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> None:
    """The server's loader gives back exactly these uint8 pixels (N, C, H, W) and labels, normalised.

    Un-normalising the float32 inputs with the stored statistics must round to the very pixels.
    """
    data = load_dataset_file(run.path, "packed")
    channels = train[0].shape[1]
    stats = parse_normalization(run.metadata()[NORMALIZATION_KEY], channels)
    shape = (1, channels, 1, 1)
    mean, std = np.array(stats.mean).reshape(shape), np.array(stats.std).reshape(shape)
    for x, y, (pixels, labels) in ((data.x_train, data.y_train, train), (data.x_test, data.y_test, test)):
        assert x.dtype == np.float32 and x.shape == pixels.shape
        np.testing.assert_array_equal(np.rint((x * std + mean) * 255).astype(np.uint8), pixels)
        np.testing.assert_array_equal(y, labels)
    assert not data.test_split_held_out
    # The stored statistics are those of the train pixels in [0, 1] units.
    np.testing.assert_allclose(stats.mean, (train[0] / 255).mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(stats.std, (train[0] / 255).std(axis=(0, 2, 3)), rtol=1e-12)
