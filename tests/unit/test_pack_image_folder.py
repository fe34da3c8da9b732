"""`effcap data pack` on image folders (torchvision's ImageFolder layout), written here with Pillow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from effcap.capacity.data.packed_format import CLASS_NAMES_KEY, SOURCE_KEY

from .packing import assert_server_reads, pack, packed, refused

RNG = np.random.default_rng(7)


def write_images(folder: Path, count: int, size=(5, 4), mode="RGB", suffix=".png") -> list[np.ndarray]:
    """`count` random images saved in `folder`; returns the (C, H, W) pixels as written, in file-name order."""
    folder.mkdir(parents=True, exist_ok=True)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    width, height = size
    pixels = []
    for i in range(count):
        hwc = RNG.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
        Image.fromarray(hwc[..., 0] if mode == "L" else hwc, mode).save(folder / f"img{i:02d}{suffix}")
        pixels.append(hwc.transpose(2, 0, 1))
    return pixels


def test_train_and_test_folders_pack_to_the_exact_pixels_labels_and_class_names(capsys, tmp_path):
    root = tmp_path / "pets"
    # "cat" < "dog" < "eel": label ids follow sorted class names, files their sorted names
    written = {
        (split, name): write_images(root / split / name, n)
        for split, n in (("train", 3), ("test", 2))
        for name in ("dog", "cat", "eel")
    }
    run = packed(capsys, root, tmp_path / "pets.safetensors")

    def split(name):
        pixels = [p for c in ("cat", "dog", "eel") for p in written[(name, c)]]
        labels = [label for label, c in enumerate(("cat", "dog", "eel")) for _ in written[(name, c)]]
        return np.stack(pixels), np.array(labels, np.int64)

    arrays = run.arrays()
    for name in ("train", "test"):
        pixels, labels = split(name)
        assert arrays[f"x_{name}"].dtype == np.uint8 and arrays[f"y_{name}"].dtype == np.int64
        np.testing.assert_array_equal(arrays[f"x_{name}"], pixels)
        np.testing.assert_array_equal(arrays[f"y_{name}"], labels)
    assert int(arrays["num_classes"]) == 3
    assert json.loads(run.metadata()[CLASS_NAMES_KEY]) == ["cat", "dog", "eel"]
    assert run.metadata()[SOURCE_KEY] == "image folder pets"  # the name, not the local path
    assert_server_reads(run, split("train"), split("test"))
    assert "train 9 9 x 3 x 4 x 5" in run.stdout and "test 6 6 x 3 x 4 x 5" in run.stdout
    assert "3: cat, dog, eel" in run.stdout


def test_a_flat_folder_of_grayscale_jpegs_is_a_train_split_only_and_says_so(capsys, tmp_path):
    root = tmp_path / "digits"
    for name in ("0", "1"):
        write_images(root / name, 2, size=(6, 6), mode="L", suffix=".jpg")
    (root / "1" / "notes.txt").write_text("not an image")
    (root / "1" / "._img00.jpg").write_bytes(b"macOS resource fork, not a JPEG")
    (root / ".ipynb_checkpoints").mkdir()
    run = packed(capsys, root, tmp_path / "digits.safetensors")
    # JPEG is lossy: what was written is what Pillow decodes from the files.
    expected = np.stack(
        [np.asarray(Image.open(root / n / f"img{i:02d}.jpg"))[None] for n in ("0", "1") for i in range(2)]
    )
    arrays = run.arrays()
    np.testing.assert_array_equal(arrays["x_train"], expected)
    np.testing.assert_array_equal(arrays["y_train"], [0, 0, 1, 1])
    assert "x_test" not in arrays
    assert "no test split" in run.stdout and "holds out 20%" in run.stdout
    assert "skipped 1 file(s)" in run.stdout and "notes.txt" in run.stdout


def test_a_class_missing_from_test_keeps_the_train_label_ids(capsys, tmp_path):
    root = tmp_path / "data"
    for name in ("a", "b", "c"):
        write_images(root / "train" / name, 1)
    test_pixels = write_images(root / "test" / "c", 2)
    run = packed(capsys, root, tmp_path / "out.safetensors")
    np.testing.assert_array_equal(run.arrays()["y_test"], [2, 2])
    np.testing.assert_array_equal(run.arrays()["x_test"], np.stack(test_pixels))


def test_a_separate_test_folder_given_with_test(capsys, tmp_path):
    train = [write_images(tmp_path / "train_here" / name, 2) for name in ("a", "b")]
    test = write_images(tmp_path / "elsewhere" / "b", 1)
    run = packed(capsys, tmp_path / "train_here", tmp_path / "o.safetensors", "--test", str(tmp_path / "elsewhere"))
    np.testing.assert_array_equal(run.arrays()["x_train"], np.stack(train[0] + train[1]))
    np.testing.assert_array_equal(run.arrays()["x_test"], np.stack(test))
    np.testing.assert_array_equal(run.arrays()["y_test"], [1])
    assert "images 5x4, mode RGB" in run.stdout


def test_a_test_class_the_train_split_lacks_is_refused(capsys, tmp_path):
    root = tmp_path / "data"
    write_images(root / "train" / "a", 1)
    write_images(root / "train" / "b", 1)
    write_images(root / "test" / "zebra", 1)
    assert "'zebra'" in refused(capsys, root, tmp_path, "IMAGE_FOLDER_CLASSES")


def test_images_of_another_size_are_named_with_the_first_and_never_resized(capsys, tmp_path):
    root = tmp_path / "data"
    write_images(root / "a", 2, size=(5, 4))
    write_images(root / "b", 1, size=(5, 5))
    error = refused(capsys, root, tmp_path, "IMAGE_SIZE_MISMATCH")
    assert str(root / "b" / "img00.png") in error and str(root / "a" / "img00.png") in error
    assert "is 5x5" in error and "is 5x4" in error and "never resizes" in error


def test_mixed_modes_are_refused_unless_mode_converts_them(capsys, tmp_path):
    root = tmp_path / "data"
    rgb = write_images(root / "a", 1, mode="RGB")
    write_images(root / "b", 1, mode="L")
    error = refused(capsys, root, tmp_path, "IMAGE_MODE_MISMATCH")
    assert str(root / "b" / "img00.png") in error and "--mode RGB" in error
    run = packed(capsys, root, tmp_path / "rgb.safetensors", "--mode", "RGB")
    converted = np.asarray(Image.open(root / "b" / "img00.png").convert("RGB")).transpose(2, 0, 1)
    np.testing.assert_array_equal(run.arrays()["x_train"], np.stack([rgb[0], converted]))
    assert "1 image(s) converted to mode RGB" in run.stdout


def test_palette_images_ask_for_a_mode_instead_of_packing_palette_indices(capsys, tmp_path):
    root = tmp_path / "data"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        Image.fromarray(RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)).convert("P").save(root / name / "p.png")
    error = refused(capsys, root, tmp_path, "IMAGE_MODE")
    assert "mode P" in error and "--mode RGB" in error
    run = packed(capsys, root, tmp_path / "p.safetensors", "--mode", "RGB")
    assert run.arrays()["x_train"].shape == (2, 3, 4, 4)


def test_16_bit_images_are_refused_even_with_mode_since_conversion_would_clip(capsys, tmp_path):
    root = tmp_path / "data"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        Image.fromarray(np.array([[0, 256], [1000, 65535]], np.uint16)).save(root / name / "deep.png")
    for options in ((), ("--mode", "L")):
        error = refused(capsys, root, tmp_path, "IMAGE_MODE", *options)
        assert "mode I;16" in error and "would clip every value above 255" in error


def test_unreadable_images_and_empty_classes_are_named(capsys, tmp_path):
    root = tmp_path / "data"
    write_images(root / "a", 1)
    write_images(root / "b", 1)
    good = (root / "b" / "img00.png").read_bytes()
    (root / "b" / "img01.png").write_bytes(good[: len(good) // 2])
    assert str(root / "b" / "img01.png") in refused(capsys, root, tmp_path, "IMAGE_UNREADABLE")
    (root / "b" / "img01.png").write_bytes(b"GIF89a not a png")
    assert "is not a PNG or JPEG image" in refused(capsys, root, tmp_path, "IMAGE_UNREADABLE")
    (root / "b" / "img01.png").unlink()
    (root / "c").mkdir()
    assert str(root / "c") in refused(capsys, root, tmp_path, "IMAGE_FOLDER_EMPTY_CLASS")


def test_a_folder_without_class_folders_is_refused(capsys, tmp_path):
    root = tmp_path / "flat"
    write_images(root, 2)
    run = pack(capsys, root, tmp_path / "o.safetensors")
    assert run.code == 2 and "[IMAGE_FOLDER_LAYOUT]" in run.stderr and "SRC/<class>/<image>.png" in run.stderr
