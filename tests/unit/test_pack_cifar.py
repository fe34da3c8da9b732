"""`effcap data pack` on the CIFAR-10/100 binary versions, records written here byte by byte as the format defines."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from effcap.capacity.data.packed_format import CLASS_NAMES_KEY

from .packing import assert_server_reads, pack, packed, refused

RNG = np.random.default_rng(11)
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def records(labels: list[tuple[int, ...]]) -> tuple[bytes, np.ndarray]:
    """CIFAR records: the label byte(s), then 1024 red, 1024 green and 1024 blue bytes (rows of 32)."""
    pixels = RNG.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    data = b"".join(
        bytes(label) + pixels[i, 0].tobytes() + pixels[i, 1].tobytes() + pixels[i, 2].tobytes()
        for i, label in enumerate(labels)
    )
    return data, pixels


def write_cifar10(root: Path, batches=(3, 2), n_test=4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    root.mkdir(parents=True, exist_ok=True)
    train_x, train_y = [], []
    for number, n in enumerate(batches, start=1):
        labels = [int(v) for v in RNG.integers(0, 10, n)]
        data, pixels = records([(label,) for label in labels])
        (root / f"data_batch_{number}.bin").write_bytes(data)
        train_x.append(pixels)
        train_y += labels
    test_labels = [int(v) for v in RNG.integers(0, 10, n_test)]
    data, test_pixels = records([(label,) for label in test_labels])
    (root / "test_batch.bin").write_bytes(data)
    (root / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n\n")  # CIFAR pads with blank lines
    return {
        "train": (np.concatenate(train_x), np.array(train_y, np.int64)),
        "test": (test_pixels, np.array(test_labels, np.int64)),
    }


def test_cifar10_batches_pack_to_the_exact_pixels_labels_and_names(capsys, tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    written = write_cifar10(root)
    run = packed(capsys, root, tmp_path / "cifar10.safetensors")
    arrays = run.arrays()
    for split in ("train", "test"):
        np.testing.assert_array_equal(arrays[f"x_{split}"], written[split][0])
        np.testing.assert_array_equal(arrays[f"y_{split}"], written[split][1])
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].shape == (5, 3, 32, 32)
    assert json.loads(run.metadata()[CLASS_NAMES_KEY]) == CIFAR10_NAMES and int(arrays["num_classes"]) == 10
    assert_server_reads(run, written["train"], written["test"])
    assert "2 train batch file(s)" in run.stdout


def write_cifar100(root: Path, n_train=5, n_test=3) -> dict[str, tuple[np.ndarray, list[tuple[int, int]]]]:
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n in (("train", n_train), ("test", n_test)):
        labels = [(int(c), int(f)) for c, f in zip(RNG.integers(0, 20, n), RNG.integers(0, 100, n))]
        data, pixels = records(labels)
        (root / f"{name}.bin").write_bytes(data)
        written[name] = (pixels, labels)
    (root / "fine_label_names.txt").write_text("\n".join(f"fine{i}" for i in range(100)))
    (root / "coarse_label_names.txt").write_text("\n".join(f"coarse{i}" for i in range(20)))
    return written


@pytest.mark.parametrize("kind, byte, classes", [("fine", 1, 100), ("coarse", 0, 20)])
def test_cifar100_packs_fine_labels_by_default_and_coarse_on_request(capsys, tmp_path, kind, byte, classes):
    root = tmp_path / "cifar-100-binary"
    written = write_cifar100(root)
    options = () if kind == "fine" else ("--cifar100-labels", "coarse")
    run = packed(capsys, root, tmp_path / "c100.safetensors", *options)
    arrays = run.arrays()
    for split in ("train", "test"):
        np.testing.assert_array_equal(arrays[f"x_{split}"], written[split][0])
        np.testing.assert_array_equal(arrays[f"y_{split}"], [label[byte] for label in written[split][1]])
    names = json.loads(run.metadata()[CLASS_NAMES_KEY])
    assert len(names) == classes == int(arrays["num_classes"]) and names[0] == f"{kind}0"


def test_a_file_that_is_not_whole_records_is_refused_with_its_arithmetic(capsys, tmp_path):
    root = tmp_path / "cifar"
    write_cifar10(root)
    data = (root / "data_batch_2.bin").read_bytes()
    (root / "data_batch_2.bin").write_bytes(data[:-100])
    error = refused(capsys, root, tmp_path, "CIFAR_RECORD_SIZE")
    assert str(root / "data_batch_2.bin") in error and "6,046 bytes, not a whole number of 3,073-byte records" in error


def test_cifar100_records_in_a_cifar10_folder_are_refused(capsys, tmp_path):
    """train.bin's 3074-byte records renamed data_batch_1.bin: sizes do not divide."""
    root = tmp_path / "cifar"
    root.mkdir()
    (root / "data_batch_1.bin").write_bytes(records([(1, 2)] * 3)[0])
    assert "3,073-byte records" in refused(capsys, root, tmp_path, "CIFAR_RECORD_SIZE")


def test_a_label_outside_the_classes_is_named_with_its_record(capsys, tmp_path):
    root = tmp_path / "cifar"
    write_cifar10(root)
    data = bytearray((root / "test_batch.bin").read_bytes())
    data[3073 * 2] = 57
    (root / "test_batch.bin").write_bytes(bytes(data))
    error = refused(capsys, root, tmp_path, "CIFAR_LABEL_OUT_OF_RANGE")
    assert "test_batch.bin" in error and "label 57 of record 2 is outside [0, 10)" in error


def test_a_names_file_with_the_wrong_count_is_refused(capsys, tmp_path):
    root = tmp_path / "cifar"
    write_cifar10(root)
    (root / "batches.meta.txt").write_text("cat\ndog\n")
    assert "names 2 classes, not 10" in refused(capsys, root, tmp_path, "CIFAR_CLASS_NAMES")


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize(
    "layout, binary",
    [
        ("cifar-10-batches-py/data_batch_1", "cifar-10-binary.tar.gz"),
        ("cifar-100-python/train", "cifar-100-binary.tar.gz"),
    ],
)
def test_the_cifar_python_version_is_refused_unread_pointing_to_the_binary_version(capsys, tmp_path, layout, binary):
    path = tmp_path / layout
    path.parent.mkdir()
    marker = tmp_path / "unpickled"
    path.write_bytes(pickle.dumps({"data": _RunsCodeWhenUnpickled(marker), "labels": [0]}, protocol=2))
    for source in (path.parent, path):
        error = refused(capsys, source, tmp_path, "PICKLE_REFUSED")
        assert binary in error and "never unpickles" in error and str(path) in error
    assert not marker.exists()


def test_the_python_version_archive_is_refused_by_name(capsys, tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really")
    run = pack(capsys, archive, tmp_path / "o.safetensors")
    assert run.code == 2 and "[PICKLE_REFUSED]" in run.stderr and "cifar-10-binary.tar.gz" in run.stderr
