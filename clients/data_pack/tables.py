"""Parquet and Arrow tables with an image column and an integer label column (Hugging Face `datasets` exports).

The image column is either a struct {bytes, path} of encoded PNG/JPEG (datasets' Image feature) or
raw bytes; labels are integers. Columns are found by type when there is one candidate, by name
(image/img, label/labels/fine_label/...) when there are several, and otherwise named with
--image-column / --label-column. Class names come from datasets' ClassLabel feature in the schema
metadata when it is there. Only the two columns are read, a batch of rows at a time, so the
table's other columns and its encoded images never sit in memory whole.

Splits: SRC a file is the train split (--test names another); SRC a folder holds files whose path
below SRC starts with train or test (train-00000-of-00002.parquet, data/test-....parquet,
train/data-00000-of-00001.arrow); shards of a split are read in name order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from effcap.clients.data_pack.errors import PackError
from effcap.clients.data_pack.images import ImageKind, ImageStack
from effcap.clients.data_pack.model import PackedDataset, Split, source_name

if TYPE_CHECKING:  # pyarrow is imported when a table is read: format detection imports this module without it
    import pyarrow as pa

TABLE_SUFFIXES = (".parquet", ".arrow")
PARQUET_MAGIC, ARROW_FILE_MAGIC = b"PAR1", b"ARROW1"
SPLIT_NAME = re.compile(r"^(train|test)(?=$|[^a-zA-Z])")
IMAGE_NAMES = ("image", "img")
LABEL_NAMES = ("label", "labels", "fine_label", "target", "class")
BATCH_ROWS = 512


@dataclass(frozen=True)
class Columns:
    image: str
    label: str
    image_is_struct: bool


def find_table_splits(root: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """({"train": [...], "test": [...]}, files naming neither split) for the table files under `root`."""
    splits: dict[str, list[Path]] = {"train": [], "test": []}
    other: list[Path] = []
    for path in _table_files(root):
        parts = path.relative_to(root).parts
        split = next((m[1] for part in parts if (m := SPLIT_NAME.match(part))), None)
        (splits[split] if split else other).append(path)
    return splits, other


def _table_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in TABLE_SUFFIXES and p.is_file())


def read_tables(
    source: Path, test_source: Path | None, mode: str | None, image_column: str | None, label_column: str | None
) -> PackedDataset:
    notes: list[str] = []
    if source.is_dir():
        splits, other = find_table_splits(source)
        if other:
            notes.append(f"ignored {len(other)} table file(s) naming neither train nor test (e.g. {other[0]})")
        if not splits["train"]:
            message = "holds no table file whose name or folder starts with train (e.g. train-00000-of-00001.parquet)"
            raise PackError(source, message, "TABLE_FILE_MISSING")
        train_files, test_files = splits["train"], splits["test"]
    else:
        train_files, test_files = [source], []
    if test_source is not None:
        if test_files:
            raise PackError(
                test_source,
                f"--test given, but {source} already holds test files ({test_files[0]})",
                "TABLE_SPLITS",
            )
        test_files = [test_source] if test_source.is_file() else _table_files(test_source)
        if not test_files:
            raise PackError(test_source, "holds no .parquet or .arrow file", "TABLE_FILE_MISSING")
    tables = [_open(path) for path in train_files]
    columns = _choose_columns(tables[0], image_column, label_column)
    notes.append(f"image column {columns.image!r}, label column {columns.label!r}")
    class_names = _class_names(tables[0], columns.label)
    train, kind = _read_split(tables, columns, mode, None, 0)
    notes.append(f"images {kind.width}x{kind.height}, mode {kind.mode}")
    test = None
    if test_files:
        test, _ = _read_split([_open(path) for path in test_files], columns, mode, kind, train.x.size)
    else:
        notes.append("no test split (no test file; --test names one); the server holds out 20% of the train split")
    top = max(int(train.y.max()), int(test.y.max()) if test is not None else 0)
    if class_names is not None:
        if top >= len(class_names):
            where = train_files[0] if int(train.y.max()) == top else test_files[0]
            message = f"has label {top}, but the schema's ClassLabel names only {len(class_names)} classes"
            raise PackError(where, message, "TABLE_LABEL_OUT_OF_RANGE")
        num_classes = len(class_names)
    else:
        num_classes = top + 1
    if num_classes < 2:
        raise PackError(train_files[0], "holds only label 0; a dataset needs at least 2 classes", "TABLE_LABELS")
    return PackedDataset(f"table {source_name(source)}", train, test, num_classes, class_names, notes)


@dataclass
class _Table:
    """One Parquet or Arrow file: its schema, row count, and batches of the chosen columns."""

    path: Path
    schema: pa.Schema
    num_rows: int
    _batches: Callable[[list[str]], Iterator[pa.RecordBatch]]

    def batches(self, names: list[str]) -> Iterator[pa.RecordBatch]:
        return self._batches(names)


def _open(path: Path) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with path.open("rb") as handle:
            magic = handle.read(6)
        if magic.startswith(PARQUET_MAGIC):
            parquet = pq.ParquetFile(path)
            return _Table(
                path,
                parquet.schema_arrow,
                parquet.metadata.num_rows,
                lambda names: parquet.iter_batches(BATCH_ROWS, columns=names),
            )
        # Arrow IPC, memory-mapped: batches are views of the file, not copies.
        source = pa.memory_map(str(path))
        reader = pa.ipc.open_file(source) if magic == ARROW_FILE_MAGIC else pa.ipc.open_stream(source)
        table = reader.read_all()
        return _Table(path, table.schema, table.num_rows, lambda names: table.select(names).to_batches(BATCH_ROWS))
    except (pa.ArrowException, OSError) as exc:
        raise PackError(path, f"is neither a readable Parquet nor Arrow file: {exc}", "TABLE_UNREADABLE") from None


def _image_type(field: pa.Field) -> bool | None:
    """True for a struct {bytes, ...} column, False for a bytes column, None for anything else."""
    import pyarrow as pa

    kind = field.type
    if pa.types.is_struct(kind):
        index = kind.get_field_index("bytes")
        if index >= 0 and (
            pa.types.is_binary(kind.field(index).type) or pa.types.is_large_binary(kind.field(index).type)
        ):
            return True
        return None
    return False if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) else None


def _choose_columns(table: _Table, image_column: str | None, label_column: str | None) -> Columns:
    import pyarrow as pa

    schema = table.schema
    listing = ", ".join(f"{f.name} ({f.type})" for f in schema)
    images = [f.name for f in schema if _image_type(f) is not None]
    labels = [f.name for f in schema if pa.types.is_integer(f.type)]
    image = _pick(
        "image", image_column, images, IMAGE_NAMES, schema, listing, table.path, "a struct {bytes, path} or binary"
    )
    label = _pick("label", label_column, labels, LABEL_NAMES, schema, listing, table.path, "an integer")
    return Columns(image, label, bool(_image_type(schema.field(image))))


def _pick(
    role: str,
    given: str | None,
    candidates: list[str],
    preferred: tuple[str, ...],
    schema: pa.Schema,
    listing: str,
    path: Path,
    kind: str,
) -> str:
    reason = f"TABLE_{role.upper()}_COLUMN"
    if given is not None:
        if given not in schema.names:
            raise PackError(path, f"has no column {given!r} (--{role}-column); columns: {listing}", reason)
        if given not in candidates:
            raise PackError(
                path,
                f"column {given!r} has type {schema.field(given).type}; the {role} column must be {kind} column",
                reason,
            )
        return given
    if len(candidates) == 1:
        return candidates[0]
    named = [name for name in preferred if name in candidates]
    if named:
        return named[0]
    if not candidates:
        raise PackError(path, f"has no {role} column ({kind} column); columns: {listing}", reason)
    raise PackError(
        path, f"has several possible {role} columns ({', '.join(candidates)}); name one with --{role}-column", reason
    )


def _class_names(table: _Table, label: str) -> tuple[str, ...] | None:
    """The ClassLabel names Hugging Face `datasets` stores in the schema metadata, if any."""
    raw = (table.schema.metadata or {}).get(b"huggingface")
    try:
        feature = json.loads(raw)["info"]["features"][label]
        names = feature["names"] if feature.get("_type") == "ClassLabel" else None
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return tuple(names)
    return None


def _read_split(
    tables: list[_Table], columns: Columns, mode: str | None, kind: ImageKind | None, values_before: int
) -> tuple[Split, ImageKind]:
    import pyarrow as pa

    total = sum(t.num_rows for t in tables)
    if total == 0:
        raise PackError(tables[0].path, "holds no rows", "TABLE_EMPTY")
    stack = ImageStack(total, mode, kind, values_before)
    y = np.empty(total, np.int64)
    index = 0
    for table in tables:
        _check_schema(table, columns)
        row = 0
        try:
            for batch in table.batches([columns.image, columns.label]):
                labels = batch.column(columns.label)
                where = f"{table.path} row"
                if labels.null_count:
                    first = row + int(np.flatnonzero(labels.is_null().to_numpy(zero_copy_only=False))[0])
                    raise PackError(
                        f"{where} {first}", f"has no label (null in column {columns.label!r})", "TABLE_LABEL_MISSING"
                    )
                values = labels.to_numpy(zero_copy_only=False).astype(np.int64)
                if (values < 0).any():
                    first = int(np.flatnonzero(values < 0)[0])
                    message = (
                        f"has label {values[first]} in column {columns.label!r}; labels are class ids >= 0 "
                        "(datasets writes -1 for unlabelled rows)"
                    )
                    raise PackError(f"{where} {row + first}", message, "TABLE_LABEL_OUT_OF_RANGE")
                y[index : index + len(values)] = values
                for value in batch.column(columns.image).to_pylist():
                    stack.put(index, _image_bytes(value, columns, f"{where} {row}"), f"{where} {row}")
                    index += 1
                    row += 1
        except pa.ArrowException as exc:
            raise PackError(table.path, f"cannot be read: {exc}", "TABLE_UNREADABLE") from None
    if index != total:
        raise PackError(tables[0].path, f"declared {total} rows but held {index}", "TABLE_UNREADABLE")
    assert stack.kind is not None
    return Split(stack.array(), y), stack.kind


def _check_schema(table: _Table, columns: Columns) -> None:
    """Every shard (and the test split) holds the chosen columns with the types they were chosen for."""
    import pyarrow as pa

    names = table.schema.names
    if columns.image not in names or _image_type(table.schema.field(columns.image)) is not columns.image_is_struct:
        message = f"has no image column {columns.image!r} of the type the first train file has"
        raise PackError(table.path, message, "TABLE_SCHEMA")
    if columns.label not in names or not pa.types.is_integer(table.schema.field(columns.label).type):
        raise PackError(table.path, f"has no integer label column {columns.label!r}", "TABLE_SCHEMA")


def _image_bytes(value, columns: Columns, where: str) -> bytes:
    data = value.get("bytes") if columns.image_is_struct and value is not None else value
    if data is None:
        path = value.get("path") if isinstance(value, dict) else None
        detail = f" (only a path, {path!r}); store the encoded image bytes in the table" if path else ""
        raise PackError(where, f"has no image bytes in column {columns.image!r}{detail}", "TABLE_IMAGE_MISSING")
    return data
