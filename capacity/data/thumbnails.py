"""Small PNG pictures of image inputs, so a report can show which examples it talks about.

Written with zlib alone (PNG is a zlib stream in chunks): no imaging library on the server for a few
hundred bytes per picture. Each picture is scaled to its own value range, since inputs arrive
normalised in any way.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

# Pixels per side up to which an input is drawn; larger images are subsampled to about this size.
MAX_SIDE = 64


def image_layout(input_shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(channels, height, width) an input of this shape is drawn as, or None when it is not an image:
    (1|3, H, W), (H, W), or a flat vector whose length is a square of at least 16 (8x8 digits, MNIST)."""
    if len(input_shape) == 3 and input_shape[0] in (1, 3):
        return input_shape[0], input_shape[1], input_shape[2]
    if len(input_shape) == 2:
        return 1, input_shape[0], input_shape[1]
    if len(input_shape) == 1 and input_shape[0] >= 16 and math.isqrt(input_shape[0]) ** 2 == input_shape[0]:
        side = math.isqrt(input_shape[0])
        return 1, side, side
    return None


def thumbnail_png(x: np.ndarray, input_shape: tuple[int, ...]) -> bytes:
    """One input as a grey or RGB PNG (empty bytes when the input is not an image)."""
    layout = image_layout(tuple(input_shape))
    if layout is None:
        return b""
    channels, height, width = layout
    image = np.asarray(x, dtype=np.float64).reshape(channels, height, width)
    step = max(1, -(-max(height, width) // MAX_SIDE))
    image = image[:, ::step, ::step]
    low, high = np.nanmin(image), np.nanmax(image)
    scaled = np.zeros_like(image) if high <= low else (image - low) / (high - low)
    pixels = np.round(np.nan_to_num(scaled) * 255).astype(np.uint8).transpose(1, 2, 0)
    return encode_png(pixels)


def encode_png(pixels: np.ndarray) -> bytes:
    """(H, W, 1|3) uint8 as an 8-bit grey or RGB PNG."""
    height, width, channels = pixels.shape
    rows = b"".join(b"\x00" + pixels[r].tobytes() for r in range(height))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
