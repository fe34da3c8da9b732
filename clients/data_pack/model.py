"""What every source reader returns: uint8 pixels (N, C, H, W) and int64 labels per split, and notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from effcap.capacity.data.datasets import MAX_DATASET_VALUES
from effcap.clients.data_pack.errors import PackError


@dataclass(frozen=True)
class Split:
    """One split: x uint8 (N, C, H, W), y int64 (N,) class ids."""

    x: np.ndarray
    y: np.ndarray


@dataclass
class PackedDataset:
    """A dataset ready to write; `notes` are facts the summary prints (a missing test split, skipped files)."""

    source: str  # the format and the source's name, e.g. "CIFAR-10 binary cifar-10-batches-bin"
    train: Split
    test: Split | None
    num_classes: int
    class_names: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)


def source_name(path: Path) -> str:
    """The source's own name (its folder or file name), for the packed file's effcap.source.

    Not the full path: the packed file is uploaded to a server, and a local path says more about the
    user's machine than about the dataset.
    """
    return path.resolve().name


def check_values(values: int, where: Path | str) -> None:
    """Refuse, before allocating, a dataset the server would refuse: it reads at most 2^30 values per file."""
    if values > MAX_DATASET_VALUES:
        message = f"would hold {values:,} values; the server reads at most {MAX_DATASET_VALUES:,} per dataset file"
        raise PackError(where, message, "DATASET_TOO_LARGE")


def check_labels(
    y: np.ndarray, num_classes: int, where: Path | str, reason: str, describe_index: str = "example"
) -> None:
    """Every label in [0, num_classes), or an error naming the first one outside it and where it is."""
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if len(bad):
        i = int(bad[0])
        message = (
            f"label {int(y[i])} of {describe_index} {i} is outside [0, {num_classes}) ({len(bad)} labels out of range)"
        )
        raise PackError(where, message, reason)
