"""Writing a PackedDataset: per-channel statistics of the train split, then one safetensors file.

The statistics are exact: a uint8 channel is summarised by its 256-bin histogram (counted a chunk
of examples at a time, so no float copy of the pixels is ever made), and mean and std follow from
the counts in float64. std is the population std (ddof 0), as torchvision's usual CIFAR/MNIST
constants are. The file is written beside its destination and renamed into place, so an
interrupted pack never leaves a half-written dataset under the requested name.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from effcap.capacity.data.packed_format import PIXEL_SCALE, Normalization, packed_metadata
from effcap.clients.data_pack.errors import PackError
from effcap.clients.data_pack.model import PackedDataset, check_values

CHUNK_VALUES = 1 << 24


@dataclass(frozen=True)
class Written:
    path: Path
    bytes: int
    normalization: Normalization


def channel_normalization(x: np.ndarray, notes: list[str]) -> Normalization:
    """Mean and std of x / 255 per channel (axis 1) over all examples and positions.

    A constant channel (std 0) gets std 1, so the server's x / std stays finite; `notes` says so.
    """
    per_example = max(1, math.prod(x.shape[2:]))
    step = max(1, CHUNK_VALUES // per_example)
    values = np.arange(256, dtype=np.float64) / PIXEL_SCALE
    means, stds = [], []
    for channel in range(x.shape[1]):
        counts = np.zeros(256, np.int64)
        for start in range(0, len(x), step):
            counts += np.bincount(x[start : start + step, channel].ravel(), minlength=256)
        total = counts.sum()
        mean = float((counts * values).sum() / total)
        std = math.sqrt(float((counts * (values - mean) ** 2).sum() / total))
        if std == 0:
            notes.append(f"channel {channel} is constant in the train split; its std is stored as 1")
            std = 1.0
        means.append(mean)
        stds.append(std)
    return Normalization(tuple(means), tuple(stds))


def write_packed(dataset: PackedDataset, output: Path) -> Written:
    from safetensors.numpy import save_file

    tensors = {"x_train": dataset.train.x, "y_train": dataset.train.y}
    if dataset.test is not None:
        tensors |= {"x_test": dataset.test.x, "y_test": dataset.test.y}
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    tensors["num_classes"] = np.array(dataset.num_classes, np.int64)
    check_values(sum(v.size for v in tensors.values()), output)
    normalization = channel_normalization(dataset.train.x, dataset.notes)
    metadata = packed_metadata(normalization, dataset.class_names, dataset.source)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        save_file(tensors, str(partial), metadata=metadata)
        # safetensors writes through a private (0600) temporary file; give the dataset the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
        os.replace(partial, output)
    except OSError as exc:
        raise PackError(output, f"cannot be written: {exc}", "OUTPUT_UNWRITABLE") from None
    finally:
        partial.unlink(missing_ok=True)
    return Written(output, output.stat().st_size, normalization)
