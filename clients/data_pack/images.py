"""Encoded images (PNG, JPEG) decoded through Pillow into one uint8 (N, C, H, W) array.

Shared by the image-folder and table readers, so both hold images to the same rule: the first image
fixes the size and mode, every other must match it or the error names it and the first. Images are
never resized (that would change what the model sees without saying so); modes are converted only
when the user asks (--mode), since converting e.g. RGBA to RGB drops a channel.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from effcap.clients.data_pack.errors import PackError
from effcap.clients.data_pack.model import check_values
from effcap.clients.data_pack.options import PIXEL_MODES

# What the other 8-bit modes are, for the error that asks for --mode.
OTHER_MODES = {
    "1": "1-bit black and white",
    "P": "palette indices, not pixel values",
    "PA": "palette indices with alpha",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
}
# Deeper than 8 bits: Pillow's convert() clips these at 255 instead of rescaling, so --mode cannot help.
DEEP_MODE_PREFIXES = ("I", "F")
# Pillow decodes many formats; only these are opened, so an odd file cannot reach a rarely used decoder.
ENCODINGS = ("PNG", "JPEG")


@dataclass(frozen=True)
class ImageKind:
    """The size and mode every image of a dataset shares, and the image that set them."""

    mode: str
    width: int
    height: int
    first: str

    @property
    def channels(self) -> int:
        return PIXEL_MODES[self.mode]


class ImageStack:
    """`count` images decoded into one preallocated uint8 array; the first image fixes size and mode.

    `kind` carries the train split's size and mode into the test split's stack; `values_before`
    counts the pixels already packed, so the size limit covers the whole file.
    """

    def __init__(
        self, count: int, convert_to: str | None, kind: ImageKind | None = None, values_before: int = 0
    ) -> None:
        self.count = count
        self.convert_to = convert_to
        self.kind = kind
        self.values_before = values_before
        self.x: np.ndarray | None = None
        self.converted = 0  # images whose mode differed from convert_to
        if kind is not None:
            self._allocate(kind)

    def put(self, index: int, source: Path | bytes, where: str) -> None:
        """Decode `source` (a file, or encoded bytes) into row `index`; `where` names it in errors."""
        pixels, mode = self._decode(source, where)
        height, width = pixels.shape[:2]
        if self.kind is None:
            self.kind = ImageKind(mode, width, height, where)
            self._allocate(self.kind)
        elif mode != self.kind.mode:
            message = (
                f"has mode {mode} but the first image ({self.kind.first}) has mode {self.kind.mode}; "
                f"pass --mode {self.kind.mode} (or another of {', '.join(PIXEL_MODES)}) to convert every image"
            )
            raise PackError(where, message, "IMAGE_MODE_MISMATCH")
        elif (width, height) != (self.kind.width, self.kind.height):
            message = (
                f"is {width}x{height} but the first image ({self.kind.first}) is {self.kind.width}x{self.kind.height}; "
                "effcap never resizes: bring the images to one size first"
            )
            raise PackError(where, message, "IMAGE_SIZE_MISMATCH")
        assert self.x is not None
        self.x[index] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

    def array(self) -> np.ndarray:
        assert self.x is not None, "no image was put"
        return self.x

    def _allocate(self, kind: ImageKind) -> None:
        values = self.count * kind.channels * kind.height * kind.width
        check_values(self.values_before + values, kind.first)
        self.x = np.empty((self.count, kind.channels, kind.height, kind.width), np.uint8)

    def _decode(self, source: Path | bytes, where: str) -> tuple[np.ndarray, str]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(source if isinstance(source, Path) else io.BytesIO(source), formats=ENCODINGS) as image:
                image.load()
                if image.mode.startswith(DEEP_MODE_PREFIXES):
                    message = (
                        f"has mode {image.mode}, more than 8 bits per pixel; pack stores 8-bit pixels and Pillow's "
                        "conversion would clip every value above 255: rescale the images to 8 bits first"
                    )
                    raise PackError(where, message, "IMAGE_MODE")
                if self.convert_to is not None and image.mode != self.convert_to:
                    self.converted += 1
                    return np.asarray(image.convert(self.convert_to)), self.convert_to
                if image.mode not in PIXEL_MODES:
                    what = OTHER_MODES.get(image.mode, "not L, LA, RGB or RGBA pixels")
                    message = f"has mode {image.mode} ({what}); pass --mode RGB (or L, LA, RGBA) to convert every image"
                    raise PackError(where, message, "IMAGE_MODE")
                return np.asarray(image), image.mode
        except UnidentifiedImageError:
            raise PackError(where, f"is not a {' or '.join(ENCODINGS)} image", "IMAGE_UNREADABLE") from None
        except Image.DecompressionBombError as exc:
            raise PackError(where, str(exc), "IMAGE_TOO_LARGE") from None
        except (OSError, SyntaxError, ValueError) as exc:  # Pillow's errors for truncated or corrupt data
            raise PackError(where, f"cannot be decoded: {exc}", "IMAGE_UNREADABLE") from None
