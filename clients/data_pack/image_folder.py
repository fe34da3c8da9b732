"""Image folders in torchvision's ImageFolder convention: SRC/<class>/<image>.png, class ids by sorted name.

Splits: SRC/train/ and SRC/test/ when SRC has a train/ folder (test/ optional), a separate test
folder given with --test, or else SRC itself as the train split only. The test split takes its label
ids from the train split's class names, so a class missing from test/ cannot shift the ids (what
two independent ImageFolder instances would do silently).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from effcap.clients.data_pack.errors import PackError
from effcap.clients.data_pack.images import ImageKind, ImageStack
from effcap.clients.data_pack.model import PackedDataset, Split, source_name

# What is read as an image (case-insensitive); other files are skipped and reported.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_image_folder(root: Path, test_root: Path | None, mode: str | None) -> PackedDataset:
    notes: list[str] = []
    train_dir, test_dir = _split_dirs(root, test_root, notes)
    classes = _class_names(train_dir)
    train_files = _labelled_files(train_dir, classes, notes, require_every_class=True)
    train, kind, converted = _decode(train_files, mode, None, 0)
    test = None
    if test_dir is not None:
        extra = sorted(set(_class_names(test_dir)) - set(classes))
        if extra:
            message = (
                f"has class folder {extra[0]!r}, which {train_dir} lacks; "
                "label ids come from the train split's class names"
            )
            raise PackError(test_dir, message, "IMAGE_FOLDER_CLASSES")
        test_files = _labelled_files(test_dir, classes, notes, require_every_class=False)
        test, _, test_converted = _decode(test_files, mode, kind, train.x.size)
        converted += test_converted
    notes.append(f"images {kind.width}x{kind.height}, mode {kind.mode}")
    if converted:
        notes.append(f"{converted} image(s) converted to mode {mode} (--mode)")
    return PackedDataset(f"image folder {source_name(root)}", train, test, len(classes), tuple(classes), notes)


def _split_dirs(root: Path, test_root: Path | None, notes: list[str]) -> tuple[Path, Path | None]:
    if test_root is not None:
        if not test_root.is_dir():
            message = "--test must be a folder of class folders for an image-folder source"
            raise PackError(test_root, message, "IMAGE_FOLDER_LAYOUT")
        if (root / "test").is_dir():
            raise PackError(test_root, f"--test given, but {root} has a test/ folder already", "IMAGE_FOLDER_LAYOUT")
        return (root / "train" if (root / "train").is_dir() else root), test_root
    if (root / "train").is_dir():
        others = sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir() and p.name not in ("train", "test") and not p.name.startswith(".")
        )
        if others:
            notes.append(f"ignored folder(s) beside train/ and test/: {', '.join(others)}")
        if (root / "test").is_dir():
            return root / "train", root / "test"
        notes.append(f"no test split: {root} has train/ but no test/; the server holds out 20% of the train split")
        return root / "train", None
    if (root / "test").is_dir():
        raise PackError(root, "has a test/ folder but no train/ folder", "IMAGE_FOLDER_LAYOUT")
    notes.append(f"no test split: {root} has no train/ and test/ folders; the server holds out 20% of the train split")
    return root, None


def _class_names(directory: Path) -> list[str]:
    """Sorted subfolder names, as torchvision sorts them; hidden folders (.ipynb_checkpoints) are not classes."""
    names = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir() and not entry.name.startswith("."))
    if not names:
        message = "holds no class folders; an image folder is SRC/<class>/<image>.png (or SRC/train/<class>/...)"
        raise PackError(directory, message, "IMAGE_FOLDER_LAYOUT")
    return names


def _labelled_files(
    directory: Path, classes: list[str], notes: list[str], require_every_class: bool
) -> list[tuple[Path, int]]:
    """(image, class id) in torchvision's order: classes by name, then each class folder walked in sorted order."""
    files: list[tuple[Path, int]] = []
    skipped: list[Path] = []
    for label, name in enumerate(classes):
        folder = directory / name
        if not folder.is_dir():
            continue
        found = 0
        for parent, names in _walk(folder):
            for file_name in sorted(names):
                path = Path(parent) / file_name
                if file_name.startswith("."):
                    continue  # hidden files, e.g. macOS's ._image.png resource forks, are not images
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    files.append((path, label))
                    found += 1
                else:
                    skipped.append(path)
        if found == 0 and require_every_class:
            raise PackError(
                folder,
                f"holds no images ({', '.join(IMAGE_SUFFIXES)}); every class folder needs at least one",
                "IMAGE_FOLDER_EMPTY_CLASS",
            )
    if skipped:
        notes.append(
            f"skipped {len(skipped)} file(s) in {directory} that are not {'/'.join(IMAGE_SUFFIXES)} (e.g. {skipped[0]})"
        )
    if not files:
        raise PackError(directory, f"holds no images ({', '.join(IMAGE_SUFFIXES)})", "IMAGE_FOLDER_EMPTY_CLASS")
    return files


def _walk(folder: Path) -> list[tuple[str, list[str]]]:
    """(folder, file names) under `folder` in sorted order, as torchvision walks; hidden folders are pruned."""
    found = []
    for parent, subfolders, names in os.walk(folder):
        subfolders[:] = [s for s in subfolders if not s.startswith(".")]
        found.append((parent, names))
    return sorted(found)


def _decode(
    files: list[tuple[Path, int]], mode: str | None, kind: ImageKind | None, values_before: int
) -> tuple[Split, ImageKind, int]:
    """The split, the size and mode its images share, and how many were converted to `mode`."""
    stack = ImageStack(len(files), mode, kind, values_before)
    for index, (path, _) in enumerate(files):
        stack.put(index, path, str(path))
    assert stack.kind is not None
    return Split(stack.array(), np.array([label for _, label in files], np.int64)), stack.kind, stack.converted
