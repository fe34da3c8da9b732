"""The CIFAR-10 and CIFAR-100 binary versions (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz, extracted).

A record is the label byte(s) then 3072 pixel bytes, red plane, green plane, blue plane, each 32x32
row-major: already (C, H, W), so a record's pixels reshape straight into the packed layout. CIFAR-10
has one label byte per record (data_batch_1.bin ... data_batch_5.bin, test_batch.bin); CIFAR-100 has
a coarse then a fine label byte (train.bin, test.bin). A file whose size is not a whole number of
records is refused (a truncated download, or the other CIFAR's files).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from effcap.clients.data_pack.errors import PackError
from effcap.clients.data_pack.model import PackedDataset, Split, check_labels, check_values, source_name

CHANNELS, SIDE = 3, 32
IMAGE_BYTES = CHANNELS * SIDE * SIDE
CIFAR10_TRAIN = re.compile(r"^data_batch_(\d+)\.bin$")
CIFAR10_TEST = "test_batch.bin"
CIFAR100_TRAIN, CIFAR100_TEST = "train.bin", "test.bin"
# CIFAR-100's label bytes: which byte of a record, and how many classes it names.
CIFAR100_LABELS = {"coarse": (0, 20, "coarse_label_names.txt"), "fine": (1, 100, "fine_label_names.txt")}


def cifar10_train_files(root: Path) -> list[Path]:
    """data_batch_N.bin in batch order (data_batch_10.bin after data_batch_9.bin)."""
    batches = [(int(m[1]), p) for p in root.iterdir() if (m := CIFAR10_TRAIN.match(p.name)) and p.is_file()]
    return [path for _, path in sorted(batches)]


def read_cifar10(root: Path) -> PackedDataset:
    train_files = cifar10_train_files(root)
    if not train_files:
        raise PackError(root, "has no data_batch_N.bin train files (the CIFAR-10 binary version)", "CIFAR_FILE_MISSING")
    notes = []
    if len(train_files) != 5:
        notes.append(
            f"{len(train_files)} train batch file(s) ({', '.join(p.name for p in train_files)}), not CIFAR-10's 5"
        )
    train = _read_records(train_files, label_bytes=1, label_byte=0, num_classes=10, values_before=0)
    test = _read_test(root / CIFAR10_TEST, 1, 0, 10, train, notes)
    names = _class_names(root / "batches.meta.txt", 10, notes)
    return PackedDataset(f"CIFAR-10 binary {source_name(root)}", train, test, 10, names, notes)


def read_cifar100(root: Path, labels: str) -> PackedDataset:
    label_byte, num_classes, names_file = CIFAR100_LABELS[labels]
    if not (root / CIFAR100_TRAIN).is_file():
        raise PackError(root, f"has no {CIFAR100_TRAIN} (the CIFAR-100 binary version)", "CIFAR_FILE_MISSING")
    notes = [
        f"{labels} labels ({num_classes} classes); "
        f"--cifar100-labels {'coarse' if labels == 'fine' else 'fine'} for the other"
    ]
    train = _read_records([root / CIFAR100_TRAIN], 2, label_byte, num_classes, 0)
    test = _read_test(root / CIFAR100_TEST, 2, label_byte, num_classes, train, notes)
    names = _class_names(root / names_file, num_classes, notes)
    source = f"CIFAR-100 binary, {labels} labels, {source_name(root)}"
    return PackedDataset(source, train, test, num_classes, names, notes)


def _read_test(
    path: Path, label_bytes: int, label_byte: int, num_classes: int, train: Split, notes: list[str]
) -> Split | None:
    if not path.is_file():
        notes.append(f"no test split: {path.name} is missing; the server holds out 20% of the train split")
        return None
    return _read_records([path], label_bytes, label_byte, num_classes, train.x.size)


def _read_records(files: list[Path], label_bytes: int, label_byte: int, num_classes: int, values_before: int) -> Split:
    """The records of `files`, concatenated into one preallocated array (no second copy of the split)."""
    record = label_bytes + IMAGE_BYTES
    counts = []
    for path in files:
        size = path.stat().st_size
        if size == 0 or size % record:
            message = (
                f"is {size:,} bytes, not a whole number of {record:,}-byte records "
                f"({label_bytes} label byte{'s' if label_bytes > 1 else ''} + {IMAGE_BYTES} pixel bytes): "
                f"{size // record:,} records and {size % record:,} bytes over; truncated, or another CIFAR's file"
            )
            raise PackError(path, message, "CIFAR_RECORD_SIZE")
        counts.append(size // record)
    total = sum(counts)
    check_values(values_before + total * IMAGE_BYTES, files[0])
    x = np.empty((total, CHANNELS, SIDE, SIDE), np.uint8)
    y = np.empty(total, np.int64)
    start = 0
    for path, count in zip(files, counts, strict=True):
        try:
            records = np.fromfile(path, np.uint8, count=count * record).reshape(count, record)
        except (OSError, ValueError) as exc:
            raise PackError(path, f"cannot be read: {exc}", "CIFAR_UNREADABLE") from None
        labels = records[:, label_byte].astype(np.int64)
        check_labels(labels, num_classes, path, "CIFAR_LABEL_OUT_OF_RANGE", describe_index="record")
        x[start : start + count] = records[:, label_bytes:].reshape(count, CHANNELS, SIDE, SIDE)
        y[start : start + count] = labels
        start += count
    return Split(x, y)


def _class_names(path: Path, num_classes: int, notes: list[str]) -> tuple[str, ...] | None:
    """The names file's non-empty lines (CIFAR pads them with blank lines), exactly one per class."""
    if not path.is_file():
        notes.append(f"no {path.name}: classes are unnamed")
        return None
    try:
        names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(path, f"cannot be read as text: {exc}", "CIFAR_CLASS_NAMES") from None
    if len(names) != num_classes:
        raise PackError(path, f"names {len(names)} classes, not {num_classes}", "CIFAR_CLASS_NAMES")
    return names
