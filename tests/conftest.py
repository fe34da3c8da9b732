"""Shared fixtures: the demo's inputs written once per session (they take a second to make)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, dataset): an MLP 2x512 briefly trained on digits, and digits as .npz."""
    from effcap.capacity.demo_assets import write_demo_checkpoint, write_digits_npz

    root = tmp_path_factory.mktemp("demo")
    model, data = root / "mlp.safetensors", root / "digits.npz"
    write_demo_checkpoint(model)
    write_digits_npz(data)
    return model, data
