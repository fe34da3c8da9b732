"""Dataset loading and validation: every bad input names its array."""

import pickle
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch

from effcap.capacity.data.datasets import builtin_dataset, load_dataset_file
from effcap.capacity.errors import InputError


def write(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def valid_arrays(n=30, k=3):
    rng = np.random.default_rng(0)
    return dict(
        x_train=rng.normal(size=(n, 5)).astype(np.float32),
        y_train=np.arange(n) % k,
        x_test=rng.normal(size=(10, 5)).astype(np.float32),
        y_test=np.arange(10) % k,
    )


def test_valid_npz_loads_as_float32_and_int64(tmp_path):
    data = load_dataset_file(write(tmp_path, **valid_arrays()), "d")
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.num_classes == 3 and data.input_shape == (5,)
    assert not data.test_split_held_out


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (dict(y_test=np.array([0, 1, 2, 7] + [0] * 6)), "dataset.y_test", "DATASET_LABEL_OUT_OF_RANGE"),
        (dict(y_train=np.array([-1] + [0, 1, 2] * 9 + [0, 1])), "dataset.y_train", "DATASET_LABEL_OUT_OF_RANGE"),
        (dict(y_train=np.arange(29) % 3), "dataset.y_train", "DATASET_LENGTH_MISMATCH"),
        (dict(y_train=(np.arange(30) % 3).astype(np.float32)), "dataset.y_train", "DATASET_DTYPE"),
        (dict(x_test=np.zeros((10, 6), np.float32)), "dataset.x_test", "DATASET_SHAPE_MISMATCH"),
        (dict(x_train=np.full((30, 5), np.nan, np.float32)), "dataset.x_train", "DATASET_NOT_FINITE"),
    ],
)
def test_invalid_arrays_are_refused_naming_the_array(tmp_path, change, field, reason):
    arrays = valid_arrays() | change
    with pytest.raises(InputError) as info:
        load_dataset_file(write(tmp_path, **arrays), "d")
    assert info.value.field == field and info.value.reason == reason


def test_missing_arrays_are_named(tmp_path):
    arrays = valid_arrays()
    del arrays["y_train"]
    with pytest.raises(InputError, match="is required") as info:
        load_dataset_file(write(tmp_path, **arrays), "d")
    assert info.value.field == "dataset.y_train"
    arrays = valid_arrays()
    del arrays["y_test"]
    with pytest.raises(InputError) as info:
        load_dataset_file(write(tmp_path, **arrays), "d")
    assert info.value.field == "dataset.y_test"


def test_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x_train=np.array([object()] * 3, dtype=object), y_train=np.zeros(3, np.int64))
    with pytest.raises(InputError, match="pickles are refused"):
        load_dataset_file(path, "d")


def test_a_raw_pickle_is_not_a_dataset(tmp_path):
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps(valid_arrays()))
    with pytest.raises(InputError) as info:
        load_dataset_file(path, "d")
    assert info.value.reason == "INVALID_DATASET"


def test_without_a_test_split_a_fifth_is_held_out(tmp_path):
    arrays = valid_arrays(n=50)
    data = load_dataset_file(write(tmp_path, x_train=arrays["x_train"], y_train=arrays["y_train"]), "d")
    assert data.test_split_held_out
    assert (len(data.x_train), len(data.x_test)) == (40, 10)


def test_builtin_digits_and_unknown_builtins():
    data = builtin_dataset("digits")
    assert (len(data.x_train), len(data.x_test), data.num_classes, data.input_shape) == (1297, 500, 10, (1, 8, 8))
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    with pytest.raises(InputError) as info:
        builtin_dataset("imagenet")
    assert info.value.field == "dataset.builtin"


def test_builtin_digits_are_scikit_learns_without_importing_it():
    """Read from the CSV scikit-learn ships (its import added 77 MiB to a worker): the same images and
    labels as load_digits, split by the same permutation, and scikit-learn stays unimported."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    data = builtin_dataset("digits")
    np.testing.assert_array_equal(data.x_train, (bunch.images.astype(np.float32) / 16.0)[order[:1297], None])
    np.testing.assert_array_equal(data.y_test, bunch.target[order[1297:]])
    assert data.y_train.dtype == np.int64
    probe = "import sys; from effcap.capacity.data.datasets import digits; digits(); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"


def npy_header(shape, descr="<f4") -> bytes:
    """A .npy 1.0 header declaring `shape`, padded as numpy pads it."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def npz_of(path, **members: bytes):
    """An .npz written member by member (raw .npy bytes), beside a small valid y_train."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, raw in {"y_train": npy_header((4,), "<i8") + bytes(32), **members}.items():
            archive.writestr(f"{name}.npy", raw)
    return path


def test_members_a_dataset_does_not_use_are_never_decompressed(tmp_path):
    """A 64 MiB array of zeros deflates to about 64 KiB: reading it would cost the server 64 MiB."""
    path = write(tmp_path, **valid_arrays())
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive, archive.open("junk.npy", "w") as member:
        member.write(npy_header((16 << 20,)))
        for _ in range(64):
            member.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    data = load_dataset_file(path, "d")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(data.x_train) == 30 and peak < 8 << 20


def test_an_array_declaring_too_many_values_is_refused_before_it_is_read(tmp_path):
    path = npz_of(tmp_path / "bomb.npz", x_train=npy_header((1 << 31, 1)) + bytes(64))  # declares 8 GiB, holds 64 bytes
    with pytest.raises(InputError) as info:
        load_dataset_file(path, "d", field="dataset")
    assert (info.value.field, info.value.reason) == ("dataset", "DATASET_TOO_LARGE")
    assert "2,147,483,652 values" in info.value.message


def test_a_safetensors_dtype_numpy_cannot_hold_is_named(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "d.safetensors"
    save_file({"x_train": torch.rand(6, 4).to(torch.bfloat16), "y_train": torch.arange(6) % 2}, str(path))
    with pytest.raises(InputError) as info:
        load_dataset_file(path, "d", field="dataset")
    assert (info.value.field, info.value.reason) == ("dataset.x_train", "DATASET_DTYPE")
    assert "BF16" in info.value.message


def test_wide_string_dtypes_and_corrupt_compressed_members_are_refused_by_name(tmp_path):
    wide = npz_of(tmp_path / "wide.npz", x_train=npy_header((2,), "|S100000000") + bytes(200))  # "2 values" of 100 MB each
    with pytest.raises(InputError) as info:
        load_dataset_file(wide, "d", field="dataset")
    assert (info.value.field, info.value.reason) == ("dataset.x_train", "DATASET_DTYPE")
    corrupt = tmp_path / "corrupt.npz"
    np.savez_compressed(corrupt, **valid_arrays())
    data = bytearray(corrupt.read_bytes())
    start = data.index(b"x_train.npy") + len("x_train.npy")
    data[start + 5 : start + 40] = bytes(35)  # break the deflate stream just after the member's local header
    corrupt.write_bytes(bytes(data))
    with pytest.raises(InputError) as info:
        load_dataset_file(corrupt, "d", field="dataset")
    assert (info.value.field, info.value.reason) == ("dataset", "INVALID_DATASET") and "decompressing" in info.value.message
