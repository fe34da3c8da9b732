"""Packed datasets on the server side: uint8 pixels normalised with their stored statistics, metadata checked."""

import tracemalloc

import numpy as np
import pytest
from safetensors.numpy import save_file

from effcap.capacity.data.datasets import load_dataset_file
from effcap.capacity.data.packed_format import CLASS_NAMES_KEY, NORMALIZATION_KEY, Normalization, packed_metadata
from effcap.capacity.errors import InputError

MEAN, STD = (0.25, 0.5, 0.75), (0.125, 0.25, 0.3)


def packed_arrays(n_train=12, n_test=6, channels=3):
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.integers(0, 256, size=(n_train, channels, 4, 5), dtype=np.uint8),
        "y_train": np.arange(n_train, dtype=np.int64) % 3,
        "x_test": rng.integers(0, 256, size=(n_test, channels, 4, 5), dtype=np.uint8),
        "y_test": np.arange(n_test, dtype=np.int64) % 3,
        "num_classes": np.array(3, np.int64),
    }


def write_packed(tmp_path, arrays=None, **metadata):
    path = tmp_path / "packed.safetensors"
    base = packed_metadata(Normalization(MEAN, STD), ("cat", "dog", "eel"), "test")
    save_file(arrays or packed_arrays(), str(path), metadata=base | metadata)
    return path


def test_uint8_pixels_are_normalised_per_channel_with_the_stored_statistics(tmp_path):
    arrays = packed_arrays()
    data = load_dataset_file(write_packed(tmp_path, arrays), "d")
    for split in ("train", "test"):
        x = getattr(data, f"x_{split}")
        pixels = arrays[f"x_{split}"].astype(np.float64) / 255
        expected = (pixels - np.array(MEAN)[None, :, None, None]) / np.array(STD)[None, :, None, None]
        assert x.dtype == np.float32 and x.shape == pixels.shape
        np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-6)
        assert np.array_equal(getattr(data, f"y_{split}"), arrays[f"y_{split}"])
    assert data.num_classes == 3 and not data.test_split_held_out
    # channel 0 of pixel value 0 is exactly (0 - 0.25) / 0.125
    assert np.float32((0 / 255 - 0.25) / 0.125) == np.float32(-2.0)


def test_uint8_pixels_without_normalisation_metadata_load_as_their_raw_values(tmp_path):
    path = tmp_path / "raw.safetensors"
    arrays = packed_arrays()
    save_file(arrays, str(path))
    data = load_dataset_file(path, "d")
    assert np.array_equal(data.x_train, arrays["x_train"].astype(np.float32))


@pytest.mark.parametrize(
    "text, part, words",
    [
        ("{not json", "", "is not valid JSON"),
        ('{"mean": [0.1, 0.2, 0.3]}', "", "exactly those two entries"),
        ('{"mean": [0.1, 0.2], "std": [1, 1, 1]}', ".mean", "got 2 values"),
        ('{"mean": [0.1, 0.2, 0.3], "std": 1}', ".std", "got int"),
        ('{"mean": [0.1, NaN, 0.3], "std": [1, 1, 1]}', ".mean[1]", "finite number"),
        ('{"mean": [0.1, 0.2, 0.3], "std": [1, Infinity, 1]}', ".std[1]", "finite number"),
        ('{"mean": [0.1, 0.2, 0.3], "std": [1, 1, "1"]}', ".std[2]", "finite number"),
        ('{"mean": [0.1, 0.2, 0.3], "std": [1, 0, 1]}', ".std[1]", "must be positive"),
        ('{"mean": [0.1, 0.2, 0.3], "std": [1, 1, -0.5]}', ".std[2]", "must be positive"),
    ],
)
def test_malformed_normalisation_metadata_is_refused_naming_its_part(tmp_path, text, part, words):
    with pytest.raises(InputError) as info:
        load_dataset_file(write_packed(tmp_path, **{NORMALIZATION_KEY: text}), "d")
    assert info.value.field == f'dataset.metadata["{NORMALIZATION_KEY}"]{part}'
    assert info.value.reason == "DATASET_METADATA"
    assert words in info.value.message


@pytest.mark.parametrize(
    "text, words",
    [
        ("[1, 2, 3]", "list of strings"),
        ('"cat"', "list of strings"),
        ('["cat", "dog"]', "names 2 classes but the dataset has 3"),
        ("[", "is not valid JSON"),
    ],
)
def test_malformed_class_names_are_refused(tmp_path, text, words):
    with pytest.raises(InputError) as info:
        load_dataset_file(write_packed(tmp_path, **{CLASS_NAMES_KEY: text}), "d")
    assert (info.value.field, info.value.reason) == (f'dataset.metadata["{CLASS_NAMES_KEY}"]', "DATASET_METADATA")
    assert words in info.value.message


def test_normalisation_of_float_inputs_is_refused_rather_than_applied_twice(tmp_path):
    arrays = packed_arrays()
    arrays["x_test"] = arrays["x_test"].astype(np.float32)
    with pytest.raises(InputError) as info:
        load_dataset_file(write_packed(tmp_path, arrays), "d")
    assert (info.value.field, info.value.reason) == ("dataset.x_test", "DATASET_DTYPE")
    assert "uint8 pixels only" in info.value.message


def test_a_test_split_with_other_channels_is_named_before_normalising(tmp_path):
    arrays = packed_arrays()
    arrays["x_test"] = arrays["x_test"][:, :1]
    with pytest.raises(InputError) as info:
        load_dataset_file(write_packed(tmp_path, arrays), "d")
    assert (info.value.field, info.value.reason) == ("dataset.x_test", "DATASET_SHAPE_MISMATCH")


def test_a_packed_file_costs_no_more_memory_to_load_than_its_float32_equivalent(tmp_path):
    """uint8 + its float32 image at most: not a second float32 copy, and no more than a float32 file takes."""
    arrays = packed_arrays(n_train=4000, n_test=1000)
    packed = write_packed(tmp_path, arrays)
    plain = tmp_path / "float32.safetensors"
    save_file({k: (v.astype(np.float32) if k.startswith("x_") else v) for k, v in arrays.items()}, str(plain))
    peaks = []
    for path in (packed, plain):
        tracemalloc.start()
        data = load_dataset_file(path, "d")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        del data
    float32_bytes = 4 * (arrays["x_train"].size + arrays["x_test"].size)
    assert peaks[0] <= peaks[1] * 1.05, peaks
    assert peaks[0] < 1.6 * float32_bytes, (peaks[0], float32_bytes)
    assert packed.stat().st_size < plain.stat().st_size / 3.5
