"""`effcap data pack` on Parquet and Arrow tables as Hugging Face `datasets` exports them, written here with pyarrow."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from effcap.capacity.data.packed_format import CLASS_NAMES_KEY

from .packing import assert_server_reads, packed, refused

RNG = np.random.default_rng(5)
NAMES = ["ant", "bee", "cow"]
HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def png(pixels_hwc: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels_hwc).save(buffer, format="PNG")
    return buffer.getvalue()


def hf_table(n: int, names=NAMES, struct=True, label="label", extra=None) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """A table as datasets' to_parquet writes it: image {bytes, path} PNGs, ClassLabel ids, features in the metadata."""
    pixels = RNG.integers(0, 256, size=(n, 6, 4, 3), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % len(names)
    encoded = [png(p) for p in pixels]
    images = (
        pa.array([{"bytes": b, "path": f"{i}.png"} for i, b in enumerate(encoded)], HF_IMAGE)
        if struct
        else pa.array(encoded, pa.binary())
    )
    columns = {
        "image": images,
        label: pa.array(labels),
        "caption": pa.array([f"row {i}" for i in range(n)]),
        **(extra or {}),
    }
    features = {"image": {"_type": "Image"}, label: {"names": names, "_type": "ClassLabel"}}
    table = pa.table(columns).replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    return table, pixels.transpose(0, 3, 1, 2), labels


def test_hub_style_parquet_shards_pack_to_the_exact_pixels_labels_and_class_names(capsys, tmp_path):
    root = tmp_path / "hub" / "data"
    root.mkdir(parents=True)
    parts = [hf_table(n) for n in (4, 3)]
    pq.write_table(parts[0][0], root / "train-00000-of-00002.parquet")
    pq.write_table(parts[1][0], root / "train-00001-of-00002.parquet")
    test_table, test_x, test_y = hf_table(3)
    pq.write_table(test_table, root / "test-00000-of-00001.parquet")
    pq.write_table(hf_table(2)[0], root / "validation-00000-of-00001.parquet")
    run = packed(capsys, tmp_path / "hub", tmp_path / "hub.safetensors")
    train = (np.concatenate([parts[0][1], parts[1][1]]), np.concatenate([parts[0][2], parts[1][2]]))
    arrays = run.arrays()
    np.testing.assert_array_equal(arrays["x_train"], train[0])
    np.testing.assert_array_equal(arrays["y_train"], train[1])
    np.testing.assert_array_equal(arrays["x_test"], test_x)
    assert json.loads(run.metadata()[CLASS_NAMES_KEY]) == NAMES and int(arrays["num_classes"]) == 3
    assert_server_reads(run, train, (test_x, test_y))
    assert "image column 'image', label column 'label'" in run.stdout
    assert "ignored 1 table file(s)" in run.stdout and "validation-00000-of-00001.parquet" in run.stdout


def test_raw_byte_images_with_a_separate_test_file_and_a_named_label_column(capsys, tmp_path):
    train, train_x, train_y = hf_table(
        4, struct=False, label="fine_label", extra={"coarse_label": pa.array([0, 1, 0, 1])}
    )
    test, test_x, _ = hf_table(2, struct=False, label="fine_label", extra={"coarse_label": pa.array([1, 1])})
    pq.write_table(train, tmp_path / "train.parquet")
    pq.write_table(test, tmp_path / "test.parquet")
    run = packed(
        capsys, tmp_path / "train.parquet", tmp_path / "a.safetensors", "--test", str(tmp_path / "test.parquet")
    )
    np.testing.assert_array_equal(run.arrays()["y_train"], train_y)  # fine_label is preferred over coarse_label
    np.testing.assert_array_equal(run.arrays()["x_test"], test_x)
    run = packed(capsys, tmp_path / "train.parquet", tmp_path / "b.safetensors", "--label-column", "coarse_label")
    np.testing.assert_array_equal(run.arrays()["y_train"], [0, 1, 0, 1])
    np.testing.assert_array_equal(run.arrays()["x_train"], train_x)
    assert "no test split" in run.stdout


def test_arrow_files_as_save_to_disk_writes_them(capsys, tmp_path):
    """datasets' save_to_disk: SRC/train/data-00000-of-00001.arrow in Arrow's IPC stream format."""
    written = {}
    for split, n in (("train", 5), ("test", 2)):
        table, x, y = hf_table(n)
        (tmp_path / "disk" / split).mkdir(parents=True)
        with (
            pa.OSFile(str(tmp_path / "disk" / split / "data-00000-of-00001.arrow"), "wb") as sink,
            pa.ipc.new_stream(sink, table.schema) as writer,
        ):
            writer.write_table(table, max_chunksize=2)
        written[split] = (x, y)
    run = packed(capsys, tmp_path / "disk", tmp_path / "disk.safetensors")
    assert_server_reads(run, written["train"], written["test"])


def test_two_possible_label_columns_ask_for_one_and_none_is_named(capsys, tmp_path):
    table, _, _ = hf_table(4, label="y1", extra={"y2": pa.array([1, 0, 1, 0])})
    pq.write_table(table, tmp_path / "t.parquet")
    error = refused(capsys, tmp_path / "t.parquet", tmp_path, "TABLE_LABEL_COLUMN")
    assert "several possible label columns (y1, y2)" in error and "--label-column" in error
    pq.write_table(table.drop_columns(["y1", "y2"]), tmp_path / "t.parquet")
    error = refused(capsys, tmp_path / "t.parquet", tmp_path, "TABLE_LABEL_COLUMN")
    assert "has no label column" in error and "caption (string)" in error
    error = refused(capsys, tmp_path / "t.parquet", tmp_path, "TABLE_LABEL_COLUMN", "--label-column", "caption")
    assert "column 'caption' has type string" in error


@pytest.mark.parametrize(
    "change, reason, words",
    [
        (
            lambda t: t.set_column(1, "label", pa.array([0, None, 1, 2], pa.int64())),
            "TABLE_LABEL_MISSING",
            "row 1: has no label",
        ),
        (
            lambda t: t.set_column(1, "label", pa.array([0, 1, -1, 2])),
            "TABLE_LABEL_OUT_OF_RANGE",
            "row 2: has label -1",
        ),
        (
            lambda t: t.set_column(1, "label", pa.array([0, 1, 2, 3])),
            "TABLE_LABEL_OUT_OF_RANGE",
            "ClassLabel names only 3 classes",
        ),
        (
            lambda t: t.set_column(
                0, "image", pa.array([None, {"bytes": None, "path": "x.png"}, None, None], HF_IMAGE)
            ),
            "TABLE_IMAGE_MISSING",
            "row 0",
        ),
        (
            lambda t: t.set_column(0, "image", pa.array([{"bytes": b"\x89PNG broken", "path": "x.png"}] * 4, HF_IMAGE)),
            "IMAGE_UNREADABLE",
            "row 0",
        ),
        (lambda t: t.drop_columns(["image"]), "TABLE_IMAGE_COLUMN", "has no image column"),
        (lambda t: t.slice(0, 0), "TABLE_EMPTY", "holds no rows"),
    ],
)
def test_malformed_rows_and_columns_are_named(capsys, tmp_path, change, reason, words):
    table, _, _ = hf_table(4)
    pq.write_table(change(table), tmp_path / "t.parquet")
    error = refused(capsys, tmp_path / "t.parquet", tmp_path, reason)
    assert words in error and "t.parquet" in error


def test_a_path_only_image_says_the_bytes_are_missing(capsys, tmp_path):
    table, _, _ = hf_table(2)
    table = table.set_column(0, "image", pa.array([{"bytes": None, "path": "/elsewhere/0.png"}] * 2, HF_IMAGE))
    pq.write_table(table, tmp_path / "t.parquet")
    assert "only a path, '/elsewhere/0.png'" in refused(capsys, tmp_path / "t.parquet", tmp_path, "TABLE_IMAGE_MISSING")


def test_a_corrupt_table_file_is_refused(capsys, tmp_path):
    table, _, _ = hf_table(3)
    pq.write_table(table, tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[: len(data) // 2] + data[-8:])
    assert str(tmp_path / "t.parquet") in refused(capsys, tmp_path / "t.parquet", tmp_path, "TABLE_UNREADABLE")
