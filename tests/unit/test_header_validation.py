"""The server's header checks: what they read (a few bytes, never the arrays) and that they agree with the loader."""

from __future__ import annotations

import json
import struct
import tracemalloc

import grpc
import numpy as np
import pytest

from effcap.capacity.data.datasets import load_dataset_file
from effcap.capacity.errors import InputError
from effcap.service.errors import ApiError
from effcap.service.header_validation import check_checkpoint_file, check_dataset_file, dataset_peak_bytes, npz_headers

MIB = 1 << 20
# The server option that raises the cap, which every refusal for memory names.
CAP_OPTION = "effcap serve --max-inflated-bytes"


def save_npz(path, compressed=False, **arrays):
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def test_peak_bytes_follow_the_loaders_copies_in_closed_form(tmp_path):
    # uint8 x (1000 x 64 values), int32 labels, no test split: stored 64,000 + 4,000 bytes; x as float32 with its
    # NaN mask 5 x 64,000; the held-out copy of the train split 4 x 64,000; labels as int64 8 x 1,000.
    path = save_npz(tmp_path / "d.npz", x_train=np.zeros((1000, 1, 8, 8), np.uint8), y_train=np.zeros(1000, np.int32))
    arrays = npz_headers(path, "dataset")
    assert {k: (a.dtype, a.shape) for k, a in arrays.items()} == {
        "x_train": ("|u1", (1000, 1, 8, 8)),
        "y_train": ("<i4", (1000,)),
    }
    assert dataset_peak_bytes(arrays) == 64_000 + 4_000 + 5 * 64_000 + 4 * 64_000 + 8 * 1_000


def test_a_small_compressed_file_that_inflates_past_the_cap_is_refused_without_inflating_it(tmp_path):
    x = np.zeros((4096, 4096), np.float32)  # 64 MiB of zeros: about 64 KiB compressed
    path = save_npz(tmp_path / "bomb.npz", compressed=True, x_train=x, y_train=np.zeros(4096, np.int64))
    assert path.stat().st_size < MIB
    tracemalloc.start()
    try:
        with pytest.raises(ApiError) as info:
            check_dataset_file(path, 32 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    error = info.value
    assert (error.code, error.reason, error.field) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INPUT_TOO_LARGE_IN_MEMORY",
        "dataset.artifact",
    )
    assert int(error.metadata["needed_bytes"]) > 64 * MIB and error.metadata["limit_bytes"] == str(32 * MIB)
    assert CAP_OPTION in error.message, error.message
    assert peak < MIB, f"the header check allocated {peak:,} bytes"
    check_dataset_file(path, 1 << 30)  # within a larger cap it passes: the full load happens in the capped process


BAD_DATASETS = {
    "object array": dict(x_train=np.array([[None, 1]] * 2, dtype=object), y_train=np.zeros(2, np.int64)),
    "strings": dict(x_train=np.array([["a", "b"]] * 2), y_train=np.zeros(2, np.int64)),
    "complex": dict(x_train=np.zeros((2, 2), np.complex64), y_train=np.zeros(2, np.int64)),
    "no labels": dict(x_train=np.zeros((2, 2), np.float32), labels=np.zeros(2, np.int64)),
    "x without test labels": dict(x_train=np.zeros((4, 2)), y_train=np.zeros(4, np.int64), x_test=np.zeros((2, 2))),
    "1-D inputs": dict(x_train=np.zeros(4, np.float32), y_train=np.zeros(4, np.int64)),
    "2-D labels": dict(x_train=np.zeros((4, 2), np.float32), y_train=np.zeros((4, 1), np.int64)),
    "short labels": dict(x_train=np.zeros((4, 2), np.float32), y_train=np.array([0, 1, 0], np.int64)),
    "test shape": dict(
        x_train=np.zeros((4, 2)), y_train=np.array([0, 1, 0, 1]), x_test=np.zeros((2, 3)), y_test=np.array([0, 1])
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DATASETS))
def test_header_checks_name_the_same_array_and_reason_as_the_loader(tmp_path, case):
    path = tmp_path / "bad.npz"
    np.savez(path, **BAD_DATASETS[case])  # savez pickles object arrays; neither check ever unpickles them
    with pytest.raises(InputError) as from_headers:
        check_dataset_file(path, 1 << 30)
    with pytest.raises(InputError) as from_loader:
        load_dataset_file(path, name="bad")
    assert (from_headers.value.field, from_headers.value.reason) == (from_loader.value.field, from_loader.value.reason)


def safetensors_bytes(header: dict, payload: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + payload


def test_safetensors_datasets_and_checkpoints_are_checked_against_their_headers(tmp_path):
    bf16 = {
        "x_train": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
        "y_train": {"dtype": "I64", "shape": [2], "data_offsets": [8, 24]},
    }
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(safetensors_bytes(bf16, bytes(24)))
    with pytest.raises(InputError) as info:
        check_dataset_file(path, 1 << 30)
    assert (info.value.field, info.value.reason) == ("dataset.x_train", "DATASET_DTYPE")
    lying = {"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}
    path.write_bytes(safetensors_bytes(lying, bytes(16)))  # declares 4 MB, holds 16 bytes
    with pytest.raises(InputError) as info:
        check_checkpoint_file(path, 1 << 30)
    assert (info.value.field, info.value.reason) == ("model.w", "INVALID_SAFETENSORS_HEADER")
    honest = {"w": {"dtype": "F32", "shape": [512, 512], "data_offsets": [0, 4 * 512 * 512]}}
    path.write_bytes(safetensors_bytes(honest, bytes(4 * 512 * 512)))
    check_checkpoint_file(path, 2 * 4 * 512 * 512)  # counted twice: as loaded, and as the model it is checked against
    with pytest.raises(ApiError) as refused:
        check_checkpoint_file(path, 2 * 4 * 512 * 512 - 1, "initial_model")
    assert (refused.value.code, refused.value.field) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "initial_model")


def test_a_file_that_is_neither_npz_nor_safetensors_is_refused_as_the_loader_refuses_it(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(100))
    with pytest.raises(InputError) as from_headers:
        check_dataset_file(path, 1 << 30)
    with pytest.raises(InputError) as from_loader:
        load_dataset_file(path, name="bad")
    assert (from_headers.value.field, from_headers.value.reason) == (from_loader.value.field, from_loader.value.reason)
