"""Shared fixtures: the demo's inputs written once per session (they take a second to make).

Trainings run single-threaded with passive OpenMP waits (set here, before any test imports torch, and
inherited by the servers' worker processes and every subprocess): on an oversubscribed runner a
two-thread pool spin-waits for siblings the kernel has descheduled and runs 10-40x slower (issue 17).
A test about threads sets its own environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _variable, _value in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}.items():
    os.environ.setdefault(_variable, _value)


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, dataset): an MLP 2x512 briefly trained on digits, and digits as .npz."""
    from effcap.capacity.demo_assets import write_demo_checkpoint, write_digits_npz

    root = tmp_path_factory.mktemp("demo")
    model, data = root / "mlp.safetensors", root / "digits.npz"
    write_demo_checkpoint(model)
    write_digits_npz(data)
    return model, data
