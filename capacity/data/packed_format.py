"""The packed dataset format: the safetensors metadata `effcap data pack` writes and the server reads.

A packed dataset is a safetensors file with uint8 pixels `x_train` (N, C, H, W) (and `x_test`), int64
labels, a `num_classes` scalar, and string metadata under the keys below. Keeping pixels as uint8 and
the normalisation as metadata makes CIFAR-10 a 150 MB upload instead of 600 MB of float32; the server
turns them into float32 with x = (x / 255 - mean) / std per channel (axis 1) when it loads the file.

This is the one definition of those keys and of their validation, for the writer (the client's
packer) and the reader (`load_dataset_file`). It imports only the standard library, because the
light client install (no numpy, no torch) imports it too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from effcap.capacity.errors import InputError
from effcap.capacity.json_values import load_json

# JSON {"mean": [C floats], "std": [C floats]}: per-channel statistics of the train split in [0, 1] pixel units.
NORMALIZATION_KEY = "effcap.normalization"
# JSON list of num_classes strings: the name of each label id, in label order.
CLASS_NAMES_KEY = "effcap.class_names"
# Free text: which format and file the dataset was packed from (informational, never interpreted).
SOURCE_KEY = "effcap.source"
# Packed pixels are uint8; dividing by this maps them onto [0, 1], the units of mean and std.
PIXEL_SCALE = 255.0
REASON = "DATASET_METADATA"


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std of the train split's pixels, in [0, 1] units (pixel / 255)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_json(self) -> str:
        # repr-exact floats: the reader recovers the writer's float64 values bit for bit.
        return json.dumps({"mean": list(self.mean), "std": list(self.std)})


def packed_metadata(normalization: Normalization, class_names: tuple[str, ...] | None, source: str) -> dict[str, str]:
    """The safetensors `__metadata__` of a packed dataset."""
    metadata = {NORMALIZATION_KEY: normalization.to_json(), SOURCE_KEY: source}
    if class_names is not None:
        metadata[CLASS_NAMES_KEY] = json.dumps(list(class_names))
    return metadata


def metadata_field(field: str, key: str) -> str:
    """The field path of a metadata entry in errors, e.g. dataset.metadata["effcap.normalization"]."""
    return f'{field}.metadata["{key}"]'


def parse_normalization(text: str, channels: int, field: str = "dataset") -> Normalization:
    """The normalisation stored under NORMALIZATION_KEY, checked against the pixels' channel count.

    Every defect names its part: malformed JSON, a missing or extra entry, a length other than the
    channel count, a value that is not a finite number, a std that is not positive (x / std would be
    infinite or flip signs).
    """
    where = metadata_field(field, NORMALIZATION_KEY)
    value = _json(text, where)
    if not isinstance(value, dict) or set(value) != {"mean", "std"}:
        message = 'must be a JSON object {"mean": [...], "std": [...]} with exactly those two entries'
        raise InputError(where, message, reason=REASON)
    parts = {}
    for name in ("mean", "std"):
        numbers = value[name]
        if not isinstance(numbers, list) or len(numbers) != channels:
            got = f"{len(numbers)} values" if isinstance(numbers, list) else type(numbers).__name__
            message = f"must list one number per channel ({channels}, the size of axis 1 of x), got {got}"
            raise InputError(f"{where}.{name}", message, reason=REASON)
        for i, number in enumerate(numbers):
            if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
                raise InputError(f"{where}.{name}[{i}]", f"must be a finite number, got {number!r}", reason=REASON)
            if name == "std" and number <= 0:
                raise InputError(f"{where}.{name}[{i}]", f"must be positive, got {number!r}", reason=REASON)
        parts[name] = tuple(float(n) for n in numbers)
    return Normalization(parts["mean"], parts["std"])


def parse_class_names(text: str, num_classes: int, field: str = "dataset") -> tuple[str, ...]:
    """The class names stored under CLASS_NAMES_KEY: a JSON list of num_classes strings."""
    where = metadata_field(field, CLASS_NAMES_KEY)
    value = _json(text, where)
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise InputError(where, "must be a JSON list of strings, one per class", reason=REASON)
    if len(value) != num_classes:
        raise InputError(where, f"names {len(value)} classes but the dataset has {num_classes}", reason=REASON)
    return tuple(value)


def _json(text: str, where: str):
    return load_json(text, where, reason=REASON)
