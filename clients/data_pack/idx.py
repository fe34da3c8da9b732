"""MNIST's IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-...), gzipped or not.

Parsed by hand (the format is four header fields and raw big-endian data), each field checked before
the data is read: magic (two zero bytes), data type code, number of dimensions, every dimension
positive, and the declared size against the bytes actually present, so a truncated download or a
file with extra bytes is named instead of silently packed. Gzip is recognised by its magic bytes,
not the file name, and decompressed only up to the size the header declares (plus one byte, to
detect trailing data), so a compressed file cannot inflate into memory.
"""

from __future__ import annotations

import gzip
import math
import re
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from effcap.clients.data_pack.errors import PackError
from effcap.clients.data_pack.model import PackedDataset, Split, check_values, source_name

# IDX data type codes (the third magic byte) and their element types.
IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}
UNSIGNED_BYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
# MNIST's names, and the variants other mirrors use (a dot before idx, a .gz suffix).
IDX_NAME = re.compile(r"^(?P<split>train|t10k)-(?P<kind>images|labels)[-.]idx(?P<ndim>[13])-ubyte(?P<gz>\.gz)?$")


def find_idx_files(root: Path) -> dict[tuple[str, str], Path]:
    """{(split, kind): path} for the IDX files in `root`; the uncompressed copy wins when both are there."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted(root.iterdir()):
        match = IDX_NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        key = (match["split"], match["kind"])
        if key not in found or not match["gz"]:  # torchvision's MNIST/raw keeps both; they hold the same data
            found[key] = path
    return found


def read_idx_dataset(root: Path) -> PackedDataset:
    files = find_idx_files(root)
    notes: list[str] = []
    for kind in ("images", "labels"):
        if ("train", kind) not in files:
            raise PackError(
                root, f"has no train-{kind}-idx{3 if kind == 'images' else 1}-ubyte[.gz]", "IDX_FILE_MISSING"
            )
    train = _read_split(files[("train", "images")], files[("train", "labels")], 0)
    test = None
    has_test = [("t10k", kind) in files for kind in ("images", "labels")]
    if all(has_test):
        test = _read_split(files[("t10k", "images")], files[("t10k", "labels")], train.x.size)
        if test.x.shape[1:] != train.x.shape[1:]:
            message = f"holds {_size(test.x)} images but the train images are {_size(train.x)}"
            raise PackError(files[("t10k", "images")], message, "IDX_SHAPE_MISMATCH")
    elif any(has_test):
        missing = "t10k-labels-idx1-ubyte" if has_test[0] else "t10k-images-idx3-ubyte"
        raise PackError(
            root, f"has one t10k file but not {missing}[.gz]; give both test files or neither", "IDX_FILE_MISSING"
        )
    else:
        notes.append(f"no test split: {root} has no t10k-* files; the server holds out 20% of the train split")
    top = max(int(train.y.max()), int(test.y.max()) if test is not None else 0)
    num_classes = top + 1
    if num_classes < 2:
        raise PackError(
            files[("train", "labels")], "holds only label 0; a dataset needs at least 2 classes", "IDX_LABELS"
        )
    notes.append(
        f"images {train.x.shape[3]}x{train.x.shape[2]} grayscale; classes are the label values 0-{top} "
        "(IDX files hold no names)"
    )
    return PackedDataset(f"MNIST IDX {source_name(root)}", train, test, num_classes, None, notes)


def _read_split(images_path: Path, labels_path: Path, values_before: int) -> Split:
    images = read_idx(images_path, ndim=3, values_before=values_before)
    labels = read_idx(labels_path, ndim=1, values_before=values_before + images.size)
    if len(labels) != len(images):
        message = f"holds {len(labels):,} labels but {images_path.name} holds {len(images):,} images"
        raise PackError(labels_path, message, "IDX_COUNT_MISMATCH")
    return Split(images[:, None], labels.astype(np.int64))


def read_idx(path: Path, ndim: int, values_before: int = 0) -> np.ndarray:
    """An unsigned-byte IDX array of `ndim` dimensions, every header field checked against the file."""
    compressed = False
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            if compressed:
                with gzip.GzipFile(fileobj=raw) as stream:
                    return _parse(stream, path, ndim, values_before, compressed=True)
            return _parse(raw, path, ndim, values_before, compressed=False)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError; a cut gzip stream an EOFError
        raise PackError(path, f"cannot be read{' as gzip' if compressed else ''}: {exc}", "IDX_UNREADABLE") from None


def _parse(stream: BinaryIO, path: Path, ndim: int, values_before: int, compressed: bool) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4:
        raise PackError(path, f"is {len(magic)} bytes long, shorter than the 4-byte IDX magic number", "IDX_TRUNCATED")
    if magic[:2] != b"\x00\x00":
        message = (
            f"does not start with an IDX magic number (two zero bytes, a type code, a dimension count): {magic.hex()}"
        )
        raise PackError(path, message, "IDX_BAD_MAGIC")
    type_code, dims = magic[2], magic[3]
    if type_code not in IDX_TYPES:
        raise PackError(
            path, f"has IDX data type code 0x{type_code:02X}, which is not one of the format's codes", "IDX_BAD_TYPE"
        )
    if type_code != UNSIGNED_BYTE:
        message = (
            f"holds IDX type {IDX_TYPES[type_code]} (0x{type_code:02X}); pack reads unsigned-byte (0x08) files, "
            "as MNIST's are"
        )
        raise PackError(path, message, "IDX_BAD_TYPE")
    if dims != ndim:
        what = "images (N, height, width)" if ndim == 3 else "labels (N)"
        raise PackError(path, f"declares {dims} dimensions; {what} need {ndim}", "IDX_BAD_DIMENSIONS")
    header = stream.read(4 * dims)
    if len(header) < 4 * dims:
        raise PackError(path, f"ends inside its header ({len(header)} of {4 * dims} dimension bytes)", "IDX_TRUNCATED")
    shape = struct.unpack(f">{dims}I", header)
    if any(size == 0 for size in shape):
        raise PackError(path, f"declares an empty dimension: {list(shape)}", "IDX_BAD_DIMENSIONS")
    count = math.prod(shape)
    check_values(values_before + count, path)
    data = stream.read(count)
    if len(data) < count:
        size = "decompressed size" if compressed else "size"
        message = (
            f"declares shape {list(shape)} ({count:,} data bytes) but its {size} leaves {len(data):,} after the header"
        )
        raise PackError(path, message, "IDX_TRUNCATED")
    if stream.read(1):
        raise PackError(
            path, f"holds more bytes than its shape {list(shape)} declares ({count:,} data bytes)", "IDX_TRAILING_BYTES"
        )
    return np.frombuffer(data, np.uint8).reshape(shape)


def _size(x: np.ndarray) -> str:
    return f"{x.shape[3]}x{x.shape[2]}"
