"""Datasets as validated arrays: .npz and safetensors files, and built-ins generated locally.

Files are read without pickle (`allow_pickle=False`); every check names the array at fault, since a
user fixing a dataset needs to know which array and what is wrong with it. Packed datasets (uint8
pixels with their normalisation in the safetensors metadata, as `effcap data pack` writes them; see
packed_format.py) become float32 here, so the rest of the library sees one kind of dataset.
"""

from __future__ import annotations

import importlib.util
import lzma
import math
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from effcap.capacity.data.array_names import DATASET_ARRAYS, NUMERIC_KINDS, SAFETENSORS_NUMPY_DTYPES, check_array_names
from effcap.capacity.data.packed_format import (
    CLASS_NAMES_KEY,
    NORMALIZATION_KEY,
    PIXEL_SCALE,
    Normalization,
    metadata_field,
    parse_class_names,
    parse_normalization,
)
from effcap.capacity.errors import InputError

BUILTINS = ("digits",)
HELD_OUT_FRACTION = 0.2
MAX_EXAMPLES = 10_000_000


@dataclass(frozen=True)
class Dataset:
    """Float32 inputs of shape (N, *input_shape) and int64 labels in [0, num_classes)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    # Set when the test split was held out of the given train split (the file had no test split).
    test_split_held_out: bool = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load_dataset_file(path: Path | str, name: str, field: str = "dataset") -> Dataset:
    """Load an .npz or safetensors file with x_train, y_train and optionally x_test, y_test.

    A packed file's uint8 pixels are normalised with its stored statistics on the way in.
    """
    contents = _read_arrays(Path(path), field)
    arrays = contents.arrays
    if contents.normalization is not None:
        for key in ("x_train", "x_test"):
            if key in arrays:
                # Popped first, so the uint8 array is freed once its float32 image exists.
                arrays[key] = normalized_pixels(arrays.pop(key), contents.normalization)
    dataset = dataset_from_arrays(arrays, name=name, field=field)
    if contents.class_names is not None:
        parse_class_names(contents.class_names, dataset.num_classes, field)
    return dataset


def normalized_pixels(pixels: np.ndarray, normalization: Normalization) -> np.ndarray:
    """(pixels / 255 - mean) / std per channel (axis 1), as float32.

    Computed in place on the one float32 copy, so loading costs the uint8 array plus its float32
    image and nothing more.
    """
    x = pixels.astype(np.float32)
    x /= np.float32(PIXEL_SCALE)
    channel = (1, len(normalization.mean)) + (1,) * (x.ndim - 2)
    x -= np.asarray(normalization.mean, np.float32).reshape(channel)
    x /= np.asarray(normalization.std, np.float32).reshape(channel)
    return x


def builtin_dataset(name: str, field: str = "dataset.builtin") -> Dataset:
    """Datasets generated or shipped in a package: no download at run time."""
    if name != "digits":
        raise InputError(field, f"unknown built-in dataset {name!r}; known: {', '.join(BUILTINS)}", reason="UNKNOWN_DATASET")
    return digits()


def digits() -> Dataset:
    """scikit-learn's 1,797 handwritten 8x8 digits, pixels scaled to [0, 1], fixed 1297/500 split.

    Read from the CSV scikit-learn ships, without importing scikit-learn: its import added 77 MiB to every
    worker's resident set (pandas, scipy.stats; bench/rademacher_cost.py's import stages). The file's rows
    are 64 pixel values and the label, as `sklearn.datasets.load_digits` reads them (a test compares the two).
    """
    table = np.loadtxt(_scikit_learn_data_file("digits.csv.gz"), delimiter=",")
    x = (table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0)[:, None, :, :]
    y = table[:, -1].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:1297], order[1297:]
    return Dataset("builtin:digits", x[train], y[train], x[test], y[test], num_classes=10)


def _scikit_learn_data_file(name: str) -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("builtin:digits needs scikit-learn installed (pip install scikit-learn)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name


def train_subset(dataset: Dataset, size: int, seed: int) -> Dataset:
    """The dataset with its train split cut to the first `size` examples of the permutation `seed` draws.

    Memorisation trials train on such subsets; the test split is kept whole. The subset is a pure
    function of (train split length, size, seed), so every executor cuts the same one, and for one
    seed a smaller size is a prefix of a larger one.
    """
    rows = subset_rows(len(dataset.x_train), size, seed)
    return replace(dataset, name=f"{dataset.name}[{size} of train, seed {seed}]", x_train=dataset.x_train[rows], y_train=dataset.y_train[rows])


def subset_rows(train_examples: int, size: int, seed: int) -> np.ndarray:
    """The train-split rows of the subset (`size`, `seed`): the first `size` of one seeded permutation."""
    if not 1 <= size <= train_examples:
        raise ValueError(f"a train subset needs 1 <= size <= {train_examples}, not {size}")
    return np.random.default_rng(seed).permutation(train_examples)[:size]


def dataset_from_arrays(arrays: dict[str, np.ndarray], name: str, field: str = "dataset") -> Dataset:
    """Validate raw arrays; hold out a test split (seeded) when none is given."""
    check_array_names(list(arrays), field)
    x_train = _inputs(arrays["x_train"], f"{field}.x_train")
    y_train = _labels(arrays["y_train"], len(x_train), f"{field}.y_train", "x_train")
    num_classes = _num_classes(arrays, y_train, field)
    _check_label_range(y_train, num_classes, f"{field}.y_train")
    if "x_test" not in arrays:
        return _hold_out_test_split(name, x_train, y_train, num_classes)
    x_test = _inputs(arrays["x_test"], f"{field}.x_test")
    if x_test.shape[1:] != x_train.shape[1:]:
        raise InputError(f"{field}.x_test", f"has example shape {list(x_test.shape[1:])} but x_train has {list(x_train.shape[1:])}", reason="DATASET_SHAPE_MISMATCH")
    y_test = _labels(arrays["y_test"], len(x_test), f"{field}.y_test", "x_test")
    _check_label_range(y_test, num_classes, f"{field}.y_test")
    return Dataset(name, x_train, y_train, x_test, y_test, num_classes)


# Values across those arrays (x is held as float32: 4 GiB). Checked against the headers before any
# array is read, so a small compressed file cannot inflate into the server's memory.
MAX_DATASET_VALUES = 1 << 30


class _FileContents(NamedTuple):
    arrays: dict[str, np.ndarray]
    normalization: Normalization | None = None  # validated against the pixels' header before they are read
    class_names: str | None = None  # raw JSON; checked once the number of classes is known


def _read_arrays(path: Path, field: str) -> _FileContents:
    with path.open("rb") as handle:
        magic = handle.read(4)
    return _FileContents(_read_npz(path, field)) if magic.startswith(b"PK") else _read_safetensors(path, field)


def _read_npz(path: Path, field: str) -> dict[str, np.ndarray]:
    """The dataset's arrays from a .npz, sizes checked from the .npy headers before decompressing."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            check_array_names(list(members), field)
            wanted = [key for key in DATASET_ARRAYS if key in members]
            shapes = {}
            for key in wanted:
                with archive.open(members[key]) as member:
                    shapes[key] = _npy_shape(member, f"{field}.{key}")
            _check_total_values(shapes, field)
            arrays = {}
            for key in wanted:
                with archive.open(members[key]) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
            return arrays
    except InputError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, RuntimeError, zlib.error, lzma.LZMAError) as exc:
        raise InputError(field, f"not a readable .npz of plain arrays (object arrays and pickles are refused): {exc}", reason="INVALID_DATASET") from None


def _npy_shape(member, field: str) -> tuple[int, ...]:
    """The shape an .npy member declares; object arrays (pickles) are refused here already."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise InputError(field, f".npy format version {version[0]}.{version[1]} is not supported; numpy.save writes 1.0", reason="INVALID_DATASET")
    if dtype.hasobject:
        raise InputError(field, "is an object array: pickles are refused; store plain numeric arrays", reason="INVALID_DATASET")
    if dtype.kind not in NUMERIC_KINDS or dtype.itemsize > 8:
        # A byte-string dtype of 100 MB per value would make "2 values" a 200 MB read.
        raise InputError(field, f"has dtype {dtype}; store booleans, integers or floats", reason="DATASET_DTYPE")
    return tuple(shape)


def _read_safetensors(path: Path, field: str) -> _FileContents:
    """The dataset's arrays from a safetensors file; dtypes, sizes and metadata checked from its header first."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as tensors:
            check_array_names(list(tensors.keys()), field)
            wanted = [key for key in DATASET_ARRAYS if key in tensors.keys()]
            dtypes = {key: tensors.get_slice(key).get_dtype() for key in wanted}
            for key, dtype in dtypes.items():
                if dtype not in SAFETENSORS_NUMPY_DTYPES:
                    raise InputError(f"{field}.{key}", f"has dtype {dtype}, which numpy cannot hold; store float32, float16 or integers", reason="DATASET_DTYPE")
            shapes = {key: tuple(tensors.get_slice(key).get_shape()) for key in wanted}
            _check_total_values(shapes, field)
            metadata = tensors.metadata() or {}
            normalization = None
            if NORMALIZATION_KEY in metadata:
                normalization = _pixel_normalization(metadata[NORMALIZATION_KEY], dtypes, shapes, field)
            arrays = {key: tensors.get_tensor(key) for key in wanted}
            return _FileContents(arrays, normalization, metadata.get(CLASS_NAMES_KEY))
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(field, f"neither .npz nor safetensors: {exc}", reason="INVALID_DATASET") from None


def _pixel_normalization(
    text: str, dtypes: dict[str, str], shapes: dict[str, tuple[int, ...]], field: str
) -> Normalization | None:
    """The stored normalisation, checked against the x arrays' headers: uint8, one statistic per channel (axis 1)."""
    for key in ("x_train", "x_test"):
        if key not in shapes:
            continue
        if dtypes[key] != "U8":
            where = metadata_field(field, NORMALIZATION_KEY)
            message = f"has dtype {dtypes[key]}, but {where} applies to uint8 pixels only"
            raise InputError(f"{field}.{key}", message, reason="DATASET_DTYPE")
        if len(shapes[key]) < 2:
            message = f"must have shape (N, C, ...) with channels on axis 1, got {list(shapes[key])}"
            raise InputError(f"{field}.{key}", message, reason="DATASET_SHAPE_MISMATCH")
    if "x_train" not in shapes:
        return None  # dataset_from_arrays names the missing array
    channels = shapes["x_train"][1]
    if "x_test" in shapes and shapes["x_test"][1] != channels:
        message = f"has {shapes['x_test'][1]} channels (axis 1) but x_train has {channels}"
        raise InputError(f"{field}.x_test", message, reason="DATASET_SHAPE_MISMATCH")
    return parse_normalization(text, channels, field)


def _check_total_values(shapes: dict[str, tuple[int, ...]], field: str) -> None:
    total = sum(math.prod(shape) for shape in shapes.values())
    if total > MAX_DATASET_VALUES:
        raise InputError(field, f"declares {total:,} values in its arrays; the limit is {MAX_DATASET_VALUES:,}", reason="DATASET_TOO_LARGE")


def _inputs(x: np.ndarray, field: str) -> np.ndarray:
    if x.ndim < 2:
        raise InputError(field, f"must have shape (N, ...) with at least 2 dimensions, got {list(x.shape)}", reason="DATASET_SHAPE_MISMATCH")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(field, f"must be numeric, got dtype {x.dtype}", reason="DATASET_DTYPE")
    if not 2 <= len(x) <= MAX_EXAMPLES:
        raise InputError(field, f"must hold between 2 and {MAX_EXAMPLES} examples, got {len(x)}", reason="DATASET_SIZE")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError(field, "contains NaN or infinite values", reason="DATASET_NOT_FINITE")
    return x


def _labels(y: np.ndarray, expected_length: int, field: str, inputs_name: str) -> np.ndarray:
    if y.ndim != 1:
        raise InputError(field, f"must be a 1-D array of class indices, got shape {list(y.shape)}", reason="DATASET_SHAPE_MISMATCH")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(field, f"must hold integer class indices, got dtype {y.dtype}", reason="DATASET_DTYPE")
    if len(y) != expected_length:
        raise InputError(field, f"has {len(y)} labels but {inputs_name} has {expected_length} examples", reason="DATASET_LENGTH_MISMATCH")
    return y.astype(np.int64)


def _num_classes(arrays: dict[str, np.ndarray], y_train: np.ndarray, field: str) -> int:
    """K from an explicit `num_classes` scalar, else max label + 1 over the train split."""
    if "num_classes" in arrays:
        value = arrays["num_classes"]
        if value.shape != () or not np.issubdtype(value.dtype, np.integer) or int(value) < 2:
            raise InputError(f"{field}.num_classes", "must be an integer scalar of at least 2", reason="DATASET_DTYPE")
        return int(value)
    k = int(y_train.max()) + 1 if len(y_train) else 0
    if k < 2:
        raise InputError(f"{field}.y_train", "must contain at least 2 classes", reason="DATASET_LABELS")
    return k


def _check_label_range(y: np.ndarray, num_classes: int, field: str) -> None:
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if len(bad):
        i = int(bad[0])
        raise InputError(field, f"label {int(y[i])} at index {i} is outside [0, {num_classes}) ({len(bad)} labels out of range)", reason="DATASET_LABEL_OUT_OF_RANGE")


def _hold_out_test_split(name: str, x: np.ndarray, y: np.ndarray, num_classes: int) -> Dataset:
    order = np.random.default_rng(0).permutation(len(y))
    n_test = max(1, int(round(HELD_OUT_FRACTION * len(y))))
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, x[train], y[train], x[test], y[test], num_classes, test_split_held_out=True)
