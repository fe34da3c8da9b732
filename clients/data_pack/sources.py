"""Which format a source is, from its names and first bytes, before any heavy import or read.

Detection order for a folder: CIFAR binary batches, MNIST IDX files, table files, class folders.
Pickles are refused here, by their first byte, whatever their name: the CIFAR "python version" is a
set of pickles, and unpickling runs code. The refusal points to the binary version.
"""

from __future__ import annotations

from pathlib import Path

from effcap.clients.data_pack.errors import PackError
from effcap.clients.data_pack.options import FORMATS

PICKLE_FIRST_BYTE = b"\x80"  # the PROTO opcode pickle protocols 2 and later start with
CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
# Files of the CIFAR python versions (cifar-10-batches-py/, cifar-100-python/).
CIFAR10_PYTHON = ("data_batch_1", "test_batch", "batches.meta")
CIFAR100_PYTHON = ("train", "test", "meta")


def resolve_format(source: Path, requested: str) -> str:
    """The source's format: detected for "auto", else the one asked for; pickles are refused either way."""
    if requested == "auto":
        return detect_format(source)
    if requested not in FORMATS:
        raise PackError(source, f"unknown format {requested!r}; choose from {', '.join(FORMATS)}", "SOURCE_FORMAT")
    if not source.exists():
        raise PackError(source, "no such file or folder", "SOURCE_MISSING")
    if source.is_file():
        refuse_pickle(source)
    else:
        _refuse_cifar_python(source)
    return requested


def detect_format(source: Path) -> str:
    """One of FORMATS, or a PackError that says what the source looks like and what to do."""
    from effcap.clients.data_pack import cifar, idx, tables

    if not source.exists():
        raise PackError(source, "no such file or folder", "SOURCE_MISSING")
    if source.is_file():
        refuse_pickle(source)
        name = source.name.lower()
        if name.startswith("cifar") and "python" in name:
            raise PackError(source, _cifar_python_message(name), "PICKLE_REFUSED")
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            raise PackError(
                source, f"is an archive; extract it first (tar xf {source.name}) and pack the folder", "SOURCE_ARCHIVE"
            )
        if source.suffix in tables.TABLE_SUFFIXES:
            return "parquet"
        if idx.IDX_NAME.match(source.name):
            raise PackError(
                source,
                "is one IDX file; pack the folder that holds the train (and t10k) images and labels",
                "SOURCE_FORMAT",
            )
        raise PackError(
            source,
            f"is not a format pack reads (a folder, or a {'/'.join(tables.TABLE_SUFFIXES)} table)",
            "SOURCE_FORMAT",
        )
    _refuse_cifar_python(source)
    if cifar.cifar10_train_files(source) or (source / cifar.CIFAR10_TEST).is_file():
        return "cifar10"
    if (source / cifar.CIFAR100_TRAIN).is_file() or (source / cifar.CIFAR100_TEST).is_file():
        return "cifar100"
    if idx.find_idx_files(source):
        return "idx"
    splits, other = tables.find_table_splits(source)
    if splits["train"] or splits["test"] or other:
        return "parquet"
    return "image-folder"


def refuse_pickle(path: Path) -> None:
    with path.open("rb") as handle:
        first = handle.read(1)
    if first == PICKLE_FIRST_BYTE:
        if path.name in CIFAR10_PYTHON + CIFAR100_PYTHON:
            raise PackError(path, _cifar_python_message(path.name), "PICKLE_REFUSED")
        raise PackError(path, "is a pickle, and pickles can run code when loaded: never unpickled", "PICKLE_REFUSED")


def _refuse_cifar_python(root: Path) -> None:
    """The CIFAR python version (pickled batches) refused by name, with the binary version to download instead."""
    for name in CIFAR10_PYTHON + CIFAR100_PYTHON:
        path = root / name
        if path.is_file():
            # CIFAR-10's names are the python version's whatever the bytes; CIFAR-100's train/test only when pickled.
            if name in CIFAR10_PYTHON:
                raise PackError(path, _cifar_python_message(name), "PICKLE_REFUSED")
            refuse_pickle(path)


def _cifar_python_message(name: str) -> str:
    binary = "cifar-10-binary.tar.gz" if name in CIFAR10_PYTHON or "-10-" in name else "cifar-100-binary.tar.gz"
    return (
        "is the CIFAR python version, pickles, which pack never unpickles (unpickling can run code); "
        f"download the binary version, {binary}, from {CIFAR_PAGE}, extract it and pack that folder"
    )
