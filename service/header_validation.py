"""CreateAudit's first look at its inputs, from their headers alone: bounded reads, nothing inflated.

A dataset's arrays (names, dtypes, shapes) are read from a safetensors header or from an .npz's zip
directory and each member's .npy header (a few hundred decompressed bytes each), and a checkpoint's
tensors from its safetensors header. That is enough to refuse most bad inputs at once with the field
at fault, and to refuse, before anything is inflated, an input whose loading would need more memory
than the server gives input validation (inflation.py), counted in bytes: what loading holds at its
peak, from the declared sizes. Whatever passes is loaded in full by the capped validation process.
"""

from __future__ import annotations

import ast
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import grpc

from effcap.capacity.data.array_names import DATASET_ARRAYS, SAFETENSORS_NUMPY_DTYPES, check_array_names
from effcap.capacity.errors import InputError
from effcap.capacity.json_values import load_json
from effcap.service.audit_job import AuditJob
from effcap.service.errors import ApiError
from effcap.service.inflation import memory_cap_note

# Bytes per value of the safetensors dtypes (a checkpoint may hold any; a dataset only those numpy holds).
SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip
# A dataset's header holds five arrays and two metadata strings; a checkpoint's may carry a graph spec.
MAX_DATASET_HEADER_BYTES = 16 << 20
MAX_CHECKPOINT_HEADER_BYTES = 100 << 20
# numpy refuses longer .npy headers unless told otherwise (numpy.lib.format's max_header_size).
MAX_NPY_HEADER_BYTES = 10_000
# The .npy dtypes a dataset may hold (datasets.NUMERIC_KINDS, at most 8 bytes), e.g. "<f4", "|u1", "|b1".
NPY_NUMERIC_DESCR = re.compile(r"[<>|=]?(?P<kind>[biuf])(?P<size>[1248])")


@dataclass(frozen=True)
class ArrayHeader:
    dtype: str  # as the file names it: safetensors' "F32", numpy's "float32"
    dtype_kind: str  # numpy's kind: b, i, u or f
    itemsize: int
    shape: tuple[int, ...]

    @property
    def values(self) -> int:
        return math.prod(self.shape)


def dataset_peak_bytes(arrays: dict[str, ArrayHeader]) -> int:
    """Memory a dataset's loading holds at its peak (capacity/data/datasets.py), from its arrays' headers.

    The arrays as stored; each x as float32 with a NaN mask of one byte per value; the train split copied
    once more when a test split must be held out of it; labels as int64.
    """
    total = sum(a.values * a.itemsize for a in arrays.values())
    for key in ("x_train", "x_test"):
        if key in arrays:
            total += 5 * arrays[key].values
    if "x_train" in arrays and "x_test" not in arrays:
        total += 4 * arrays["x_train"].values
    total += sum(8 * arrays[key].values for key in ("y_train", "y_test") if key in arrays)
    return total


def check_dataset_file(path: Path, cap_bytes: int, field: str = "dataset") -> None:
    """Refuse a dataset whose headers are wrong (InputError naming the array), or whose loading would exceed
    `cap_bytes` (RESOURCE_EXHAUSTED naming `field`.artifact)."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if not head.startswith(b"PK") and head[8:9] != b"{":
        raise InputError(field, "neither .npz nor safetensors", "INVALID_DATASET")
    arrays = npz_headers(path, field) if head.startswith(b"PK") else _dataset_safetensors_headers(path, field)
    _check_dataset_shapes(arrays, field)
    _check_bytes(dataset_peak_bytes(arrays), cap_bytes, f"{field}.artifact", "dataset")


def check_checkpoint_file(path: Path, cap_bytes: int, field: str = "model") -> None:
    """Refuse a safetensors checkpoint whose header is inconsistent with the file, or too large to check in memory.

    Its tensors are counted twice: as loaded, and as the model built to check them against. An ONNX model's
    outline was checked at upload (artifacts.sniff_format).
    """
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return
    tensors, _ = read_safetensors_header(path, field, MAX_CHECKPOINT_HEADER_BYTES)
    _check_bytes(2 * sum(t.values * t.itemsize for t in tensors.values()), cap_bytes, field, "checkpoint")


def read_safetensors_header(path: Path, field: str, max_header_bytes: int) -> tuple[dict[str, ArrayHeader], dict]:
    """The tensors a safetensors file declares (dtype, shape; offsets checked against the file) and its metadata."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise InputError(
                field, "is not a safetensors file: shorter than its 8-byte header length", "INVALID_SAFETENSORS_HEADER"
            )
        (length,) = struct.unpack("<Q", prefix)
        if length > min(max_header_bytes, size - 8):
            message = f"a safetensors header that claims {length} bytes; the file has {size} and at most {max_header_bytes} are read"
            raise InputError(field, message, "SAFETENSORS_HEADER_TOO_LARGE")
        raw = handle.read(length)
    try:
        header = load_json(raw.decode(), field, "INVALID_SAFETENSORS_HEADER")
    except UnicodeDecodeError:
        raise InputError(field, "a safetensors header that is not UTF-8", "INVALID_SAFETENSORS_HEADER") from None
    if not isinstance(header, dict):
        raise InputError(field, "a safetensors header that is not a JSON object", "INVALID_SAFETENSORS_HEADER")
    metadata = header.pop("__metadata__", None) or {}
    payload = size - 8 - length
    tensors = {}
    for name, entry in header.items():
        tensors[name] = _safetensors_entry(name, entry, payload, f"{field}.{name[:60]}")
    return tensors, metadata if isinstance(metadata, dict) else {}


def _safetensors_entry(name: str, entry: object, payload: int, field: str) -> ArrayHeader:
    try:
        dtype, shape, (start, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        valid = all(isinstance(d, int) and d >= 0 for d in (*shape, start, end)) and dtype in SAFETENSORS_ITEMSIZE
    except (TypeError, KeyError, ValueError):
        valid = False
    if not valid:
        raise InputError(
            field,
            "a safetensors entry without a known dtype, a shape and two data offsets",
            "INVALID_SAFETENSORS_HEADER",
        )
    itemsize = SAFETENSORS_ITEMSIZE[dtype]
    if end - start != math.prod(shape) * itemsize or end > payload:
        message = f"declares {dtype} {list(shape)} at bytes [{start}, {end}) of a {payload}-byte payload"
        raise InputError(field, message, "INVALID_SAFETENSORS_HEADER")
    kind = {"BOOL": "b", "BF16": "f"}.get(dtype, dtype[0].lower())
    return ArrayHeader(dtype, kind, itemsize, shape)


def _dataset_safetensors_headers(path: Path, field: str) -> dict[str, ArrayHeader]:
    tensors, _ = read_safetensors_header(path, field, MAX_DATASET_HEADER_BYTES)
    check_array_names(list(tensors), field)
    arrays = {key: tensors[key] for key in DATASET_ARRAYS if key in tensors}
    for key, array in arrays.items():
        if array.dtype not in SAFETENSORS_NUMPY_DTYPES:
            message = f"has dtype {array.dtype}, which numpy cannot hold; store float32, float16 or integers"
            raise InputError(f"{field}.{key}", message, "DATASET_DTYPE")
    return arrays


def npz_headers(path: Path, field: str) -> dict[str, ArrayHeader]:
    """The arrays of an .npz from its zip directory and each member's .npy header (only those bytes decompressed)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            check_array_names(list(members), field)
            arrays = {}
            for key in (k for k in DATASET_ARRAYS if k in members):
                with archive.open(members[key]) as member:
                    arrays[key] = _npy_header(member, f"{field}.{key}")
            return arrays
    except InputError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise InputError(field, f"not a readable .npz of plain arrays: {exc}", "INVALID_DATASET") from None


def _npy_header(member: BinaryIO, field: str) -> ArrayHeader:
    """An .npy header read as numpy.lib.format does, without importing numpy (the server does not need it)."""
    magic = member.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise InputError(field, "is not an .npy array", "INVALID_DATASET")
    if magic[6:8] not in (b"\x01\x00", b"\x02\x00"):
        message = f".npy format version {magic[6]}.{magic[7]} is not supported; numpy.save writes 1.0"
        raise InputError(field, message, "INVALID_DATASET")
    length_bytes = 2 if magic[6] == 1 else 4
    (length,) = struct.unpack("<H" if length_bytes == 2 else "<I", member.read(length_bytes))
    if length > MAX_NPY_HEADER_BYTES:
        raise InputError(field, f"has an .npy header of {length} bytes; numpy writes a few hundred", "INVALID_DATASET")
    try:
        header = ast.literal_eval(member.read(length).decode("latin1"))
        descr, shape = header["descr"], tuple(header["shape"])
    except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError):
        raise InputError(field, "has an .npy header that is not numpy's dictionary", "INVALID_DATASET") from None
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InputError(field, f"has an .npy shape {list(shape)[:8]} that is not a tuple of sizes", "INVALID_DATASET")
    if descr == "|O":
        raise InputError(
            field, "is an object array: pickles are refused; store plain numeric arrays", "INVALID_DATASET"
        )
    match = NPY_NUMERIC_DESCR.fullmatch(descr) if isinstance(descr, str) else None
    if match is None:
        # Object arrays (pickles), strings, records and 16-byte values are all refused here.
        raise InputError(field, f"has dtype {str(descr)[:60]}; store booleans, integers or floats", "DATASET_DTYPE")
    return ArrayHeader(descr, match["kind"], int(match["size"]), shape)


def _check_dataset_shapes(arrays: dict[str, ArrayHeader], field: str) -> None:
    """The shape rules of datasets.dataset_from_arrays that headers can decide."""
    for x_key, y_key in (("x_train", "y_train"), ("x_test", "y_test")):
        if x_key not in arrays:
            continue
        x, y = arrays[x_key].shape, arrays[y_key].shape
        if len(x) < 2:
            message = f"must have shape (N, ...) with at least 2 dimensions, got {list(x)}"
            raise InputError(f"{field}.{x_key}", message, "DATASET_SHAPE_MISMATCH")
        if len(y) != 1:
            message = f"must be a 1-D array of class indices, got shape {list(y)}"
            raise InputError(f"{field}.{y_key}", message, "DATASET_SHAPE_MISMATCH")
        if y[0] != x[0]:
            message = f"has {y[0]} labels but {x_key} has {x[0]} examples"
            raise InputError(f"{field}.{y_key}", message, "DATASET_LENGTH_MISMATCH")
    if "x_test" in arrays and arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        test, train = list(arrays["x_test"].shape[1:]), list(arrays["x_train"].shape[1:])
        message = f"has example shape {test} but x_train has {train}"
        raise InputError(f"{field}.x_test", message, "DATASET_SHAPE_MISMATCH")


def _check_bytes(needed: int, cap_bytes: int, field: str, what: str) -> None:
    if needed > cap_bytes:
        raise ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "INPUT_TOO_LARGE_IN_MEMORY",
            f"{field}: loading this {what} takes {needed:,} bytes of memory by its headers; "
            f"{memory_cap_note(cap_bytes)}",
            field=field,
            metadata={"limit_bytes": str(cap_bytes), "needed_bytes": str(needed)},
        )


def check_job_headers(job: AuditJob, cap_bytes: int) -> None:
    """The header checks of every uploaded input of an audit."""
    check_checkpoint_file(job.model_path, cap_bytes, "model")
    if job.initial_model_path is not None:
        check_checkpoint_file(job.initial_model_path, cap_bytes, "initial_model")
    if job.dataset_path is not None:
        check_dataset_file(job.dataset_path, cap_bytes)
