"""`effcap data pack` on MNIST's IDX files, written here with struct (and gzip) as the format describes them."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from .packing import assert_server_reads, packed, refused

RNG = np.random.default_rng(3)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Magic (0, 0, type code, dimension count), big-endian uint32 dimensions, then the data."""
    return (
        struct.pack(">BBBB", 0, 0, type_code, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )


def write_mnist(root: Path, n_train=6, n_test=4, side=(5, 3), gz=True, test=True) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": RNG.integers(0, 256, size=(n_train, *side), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": RNG.integers(0, 256, size=(n_test, *side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 3).astype(np.uint8),
    }
    for name, array in arrays.items():
        if test or name.startswith("train"):
            data = idx_bytes(array)
            (root / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return arrays


def test_gzipped_idx_files_pack_to_the_exact_pixels_and_labels(capsys, tmp_path):
    arrays = write_mnist(tmp_path / "mnist")
    run = packed(capsys, tmp_path / "mnist", tmp_path / "mnist.safetensors")
    out = run.arrays()
    train = (arrays["train-images-idx3-ubyte"][:, None], arrays["train-labels-idx1-ubyte"].astype(np.int64))
    test = (arrays["t10k-images-idx3-ubyte"][:, None], arrays["t10k-labels-idx1-ubyte"].astype(np.int64))
    np.testing.assert_array_equal(out["x_train"], train[0])
    np.testing.assert_array_equal(out["y_train"], train[1])
    np.testing.assert_array_equal(out["x_test"], test[0])
    assert out["x_train"].dtype == np.uint8 and out["x_train"].shape == (6, 1, 5, 3)
    assert int(out["num_classes"]) == 6  # labels 0-5 in train
    assert_server_reads(run, train, test)
    assert "classes are the label values 0-5" in run.stdout


def test_uncompressed_files_and_a_missing_test_split(capsys, tmp_path):
    arrays = write_mnist(tmp_path / "raw", gz=False, test=False)
    run = packed(capsys, tmp_path / "raw", tmp_path / "raw.safetensors")
    np.testing.assert_array_equal(run.arrays()["x_train"][:, 0], arrays["train-images-idx3-ubyte"])
    assert "x_test" not in run.arrays() and "no test split" in run.stdout


def test_the_uncompressed_copy_wins_when_torchvision_kept_both(capsys, tmp_path):
    root = tmp_path / "MNIST" / "raw"
    arrays = write_mnist(root, gz=False)
    labels = arrays["train-labels-idx1-ubyte"][::-1].copy()
    (root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    run = packed(capsys, root, tmp_path / "o.safetensors")
    np.testing.assert_array_equal(run.arrays()["y_train"], arrays["train-labels-idx1-ubyte"])


def header(type_code=0x08, dims=(6, 5, 3), ndim=None) -> bytes:
    ndim = len(dims) if ndim is None else ndim
    return struct.pack(">BBBB", 0, 0, type_code, ndim) + struct.pack(f">{len(dims)}I", *dims)


PIXELS = bytes(range(90))  # 6 x 5 x 3


@pytest.mark.parametrize(
    "images, reason, words",
    [
        (header() + PIXELS[:-7], "IDX_TRUNCATED", "90 data bytes"),
        (header()[:9], "IDX_TRUNCATED", "ends inside its header"),
        (b"\x00\x00", "IDX_TRUNCATED", "shorter than the 4-byte IDX magic"),
        (b"\x1f\x00\x08\x03" + header()[4:] + PIXELS, "IDX_BAD_MAGIC", "1f000803"),
        (header(type_code=0x0A) + PIXELS, "IDX_BAD_TYPE", "0x0A"),
        (header(type_code=0x0D) + PIXELS * 4, "IDX_BAD_TYPE", "float"),
        (header(dims=(6, 15)) + PIXELS, "IDX_BAD_DIMENSIONS", "declares 2 dimensions"),
        (header(dims=(6, 0, 3)), "IDX_BAD_DIMENSIONS", "empty dimension"),
        (header() + PIXELS + b"\x00", "IDX_TRAILING_BYTES", "more bytes than its shape"),
        (header(dims=(1 << 20, 1 << 10, 1 << 10)), "DATASET_TOO_LARGE", "1,099,511,627,776 values"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_malformed_image_files_are_refused_naming_file_and_field(capsys, tmp_path, images, reason, words, gz):
    root = tmp_path / "mnist"
    write_mnist(root, gz=False, test=False)
    path = root / "train-images-idx3-ubyte"
    path.unlink()
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(images) if gz else images)
    error = refused(capsys, root, tmp_path, reason)
    assert str(path) in error and words in error


def test_counts_that_disagree_and_a_cut_gzip_stream_are_named(capsys, tmp_path):
    root = tmp_path / "mnist"
    write_mnist(root, gz=False, test=False)
    (root / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    assert "holds 5 labels but train-images-idx3-ubyte holds 6 images" in refused(
        capsys, root, tmp_path, "IDX_COUNT_MISMATCH"
    )
    (root / "train-labels-idx1-ubyte").unlink()
    compressed = gzip.compress(idx_bytes((np.arange(6) % 2).astype(np.uint8)))
    (root / "train-labels-idx1-ubyte.gz").write_bytes(compressed[: len(compressed) - 12])
    assert "cannot be read as gzip" in refused(capsys, root, tmp_path, "IDX_UNREADABLE")


def test_one_test_file_without_the_other_is_refused(capsys, tmp_path):
    root = tmp_path / "mnist"
    write_mnist(root, gz=False)
    (root / "t10k-labels-idx1-ubyte").unlink()
    assert "t10k-labels-idx1-ubyte" in refused(capsys, root, tmp_path, "IDX_FILE_MISSING")


def test_test_images_of_another_size_are_refused(capsys, tmp_path):
    root = tmp_path / "mnist"
    write_mnist(root, gz=False)
    (root / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((4, 4, 4), np.uint8)))
    assert "holds 4x4 images but the train images are 3x5" in refused(capsys, root, tmp_path, "IDX_SHAPE_MISMATCH")
