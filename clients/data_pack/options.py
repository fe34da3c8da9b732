"""The choices `effcap data pack` offers, in a module light enough for the CLI's parser (no numpy)."""

from __future__ import annotations

FORMATS = ("image-folder", "idx", "cifar10", "cifar100", "parquet")
# Pillow modes that are uint8 pixels, and their channel counts: what --mode may convert to.
PIXEL_MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
CIFAR100_LABELS = ("fine", "coarse")
# Which options apply to which formats, for a clear error instead of an option silently ignored.
OPTION_FORMATS = {
    "--test": ("image-folder", "parquet"),
    "--mode": ("image-folder", "parquet"),
    "--image-column": ("parquet",),
    "--label-column": ("parquet",),
    "--cifar100-labels": ("cifar100",),
}
