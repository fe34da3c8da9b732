"""A real full disk for tests: a small tmpfs, filled with a file until the kernel answers ENOSPC."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(mount: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a tmpfs of `size` at `mount` (skipping the test where mounting is not permitted)."""
    mount.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write until the kernel refuses for lack of space; returns the filler file, to free the space."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (64 << 10))
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler
