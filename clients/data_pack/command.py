"""`effcap data pack SRC -o data.safetensors`: the argument parser and the run, light until it runs.

The parser is built with the rest of the CLI, so this module imports nothing beyond the standard
library and rich; numpy, safetensors, Pillow and pyarrow are imported when a pack runs, after a
check that names the `effcap[data]` extra when one is missing.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from rich.console import Console

from effcap.clients.data_pack.errors import PackError
from effcap.clients.data_pack.options import CIFAR100_LABELS, FORMATS, OPTION_FORMATS, PIXEL_MODES

EXTRA = "effcap[data]"
# import name -> the distribution pip installs it from
DISTRIBUTIONS = {"numpy": "numpy", "safetensors": "safetensors", "PIL": "Pillow", "pyarrow": "pyarrow"}
FORMAT_MODULES = {"image-folder": ("PIL",), "parquet": ("PIL", "pyarrow"), "idx": (), "cifar10": (), "cifar100": ()}
DESCRIPTION = """\
Convert a dataset to the one format the server reads: a safetensors file of uint8 pixels (N, C, H, W),
int64 labels and the train split's per-channel mean and std (applied by the server). SRC is one of:
  an image folder   SRC/<class>/<image>.png|jpg, or SRC/train/<class>/... and SRC/test/<class>/...
  MNIST IDX         a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte (and t10k-...), .gz or not
  CIFAR binary      cifar-10-batches-bin/ (data_batch_N.bin, test_batch.bin) or cifar-100-binary/ (train.bin, test.bin)
  a table           a .parquet/.arrow file, or a folder of train-*/test-* files, with an image and a label column
"""


def add_data_command(commands: argparse._SubParsersAction) -> None:
    """Register `effcap data pack` on the CLI's subcommands."""
    data = commands.add_parser("data", help="prepare datasets: effcap data pack SRC -o data.safetensors")
    actions = data.add_subparsers(required=True, metavar="ACTION")
    pack = actions.add_parser(
        "pack",
        help="pack an image folder, MNIST IDX, CIFAR binary or Parquet/Arrow table",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pack.add_argument("source", type=Path, metavar="SRC", help="the dataset file or folder")
    pack.add_argument("-o", "--output", type=Path, required=True, help="the packed dataset to write (.safetensors)")
    pack.add_argument(
        "--format", choices=("auto", *FORMATS), default="auto", help="the source's format (default: detected)"
    )
    pack.add_argument("--test", type=Path, help="a separate test split: an image folder, or a table file or folder")
    pack.add_argument(
        "--mode",
        choices=tuple(PIXEL_MODES),
        help="convert every image to this Pillow mode (default: all must share one)",
    )
    pack.add_argument(
        "--cifar100-labels", choices=CIFAR100_LABELS, help="CIFAR-100: the fine (100, default) or coarse (20) labels"
    )
    pack.add_argument("--image-column", help="table: the image column (default: detected)")
    pack.add_argument("--label-column", help="table: the integer label column (default: detected)")
    pack.set_defaults(handler=run_pack)


def run_pack(args: argparse.Namespace, console: Console) -> int:
    if missing := _missing(("numpy", "safetensors")):
        raise _extra_needed(missing)
    from effcap.clients.data_pack.sources import resolve_format

    fmt = resolve_format(args.source, args.format)
    _check_options(args, fmt)
    _check_output(args.source, args.output)
    if missing := _missing(FORMAT_MODULES[fmt]):
        raise _extra_needed(missing)
    try:
        dataset = _read(fmt, args)
    except OSError as exc:  # a folder or file the readers cannot open (permissions, a vanished file)
        raise PackError(
            exc.filename or args.source, f"cannot be read: {exc.strerror or exc}", "SOURCE_UNREADABLE"
        ) from None
    from effcap.clients.data_pack.summary import print_summary
    from effcap.clients.data_pack.writer import write_packed

    written = write_packed(dataset, args.output)
    print_summary(dataset, written, Console(soft_wrap=True, emoji=False))  # paths whole and as written
    return 0


def _read(fmt: str, args: argparse.Namespace):
    if fmt == "image-folder":
        from effcap.clients.data_pack.image_folder import read_image_folder

        return read_image_folder(args.source, args.test, args.mode)
    if fmt == "idx":
        from effcap.clients.data_pack.idx import read_idx_dataset

        return read_idx_dataset(args.source)
    if fmt == "cifar10":
        from effcap.clients.data_pack.cifar import read_cifar10

        return read_cifar10(args.source)
    if fmt == "cifar100":
        from effcap.clients.data_pack.cifar import read_cifar100

        return read_cifar100(args.source, args.cifar100_labels or "fine")
    from effcap.clients.data_pack.tables import read_tables

    return read_tables(args.source, args.test, args.mode, args.image_column, args.label_column)


def _missing(modules: tuple[str, ...]) -> list[str]:
    """The distributions of `modules` that cannot be imported here."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(DISTRIBUTIONS[module])
    return missing


def _extra_needed(missing: list[str]) -> PackError:
    """The error naming the extra to install (the CLI prints it and exits 2)."""
    return PackError("effcap data pack", f"needs {', '.join(missing)}, not installed here: pip install '{EXTRA}'", "DEPENDENCY_MISSING")


def _check_options(args: argparse.Namespace, fmt: str) -> None:
    for option, formats in OPTION_FORMATS.items():
        if getattr(args, option.removeprefix("--").replace("-", "_")) is not None and fmt not in formats:
            raise PackError(option, f"applies to {' and '.join(formats)} sources, not {fmt}", "OPTION_NOT_APPLICABLE")


def _check_output(source: Path, output: Path) -> None:
    """Fail before the read, which can take minutes, rather than after it."""
    if output.is_dir():
        raise PackError(output, "is a folder; -o names the file to write", "OUTPUT_UNWRITABLE")
    if not output.parent.is_dir():
        raise PackError(output, f"cannot be written: the folder {output.parent} does not exist", "OUTPUT_UNWRITABLE")
    if output.exists() and output.resolve() == source.resolve():
        raise PackError(output, "is the source itself", "OUTPUT_UNWRITABLE")
