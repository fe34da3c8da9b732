"""The one-screen account of a pack: what was read, what was written, and what the server will hold."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from effcap.clients.data_pack.model import PackedDataset, Split
from effcap.clients.data_pack.writer import Written

NAMES_SHOWN = 10


def print_summary(dataset: PackedDataset, written: Written, console: Console) -> None:
    console.print(f"packed {dataset.source} -> {written.path}", highlight=False)
    table = Table(box=None, pad_edge=False)
    for column in ("split", "examples", "x uint8 (N x C x H x W)", "examples per class"):
        table.add_column(column, justify="right" if column == "examples" else "left")
    splits = [("train", dataset.train), *([("test", dataset.test)] if dataset.test is not None else [])]
    for name, split in splits:
        shape = " x ".join(str(d) for d in split.x.shape)
        table.add_row(name, f"{len(split.y):,}", shape, _per_class(split, dataset.num_classes))
    console.print(table)
    float32_bytes = 4 * sum(split.x.size for _, split in splits)
    lines = [
        ("classes", f"{dataset.num_classes}: {_names(dataset)}"),
        ("mean", f"{_numbers(written.normalization.mean)} (train split, pixel / 255, per channel)"),
        ("std", _numbers(written.normalization.std)),
        ("file", f"{_size(written.bytes)}; as float32 the pixels alone would take {_size(float32_bytes)}"),
        *(("note", note) for note in dataset.notes),
    ]
    for label, text in lines:
        console.print(f"{label:<8} {text}", highlight=False)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n:,} bytes ({n / scale:.1f} {unit})"
    return f"{n:,} bytes"


def _per_class(split: Split, num_classes: int) -> str:
    counts = np.bincount(split.y, minlength=num_classes)
    missing = int((counts == 0).sum())
    text = f"{counts.min():,}-{counts.max():,}" if counts.min() != counts.max() else f"{counts.min():,}"
    return text + (f" ({missing} classes absent)" if missing else "")


def _names(dataset: PackedDataset) -> str:
    if dataset.class_names is None:
        return f"unnamed (label ids 0-{dataset.num_classes - 1})"
    shown = ", ".join(dataset.class_names[:NAMES_SHOWN])
    return shown + (f", ... ({dataset.num_classes - NAMES_SHOWN} more)" if dataset.num_classes > NAMES_SHOWN else "")


def _numbers(values: tuple[float, ...]) -> str:
    return " ".join(f"{v:.4f}" for v in values)
