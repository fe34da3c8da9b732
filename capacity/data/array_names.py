"""Which arrays a dataset file holds and of what kinds: the rules both the loader and the server's header
check apply, kept free of numpy so that the server can import them without it."""

from __future__ import annotations

from effcap.capacity.errors import InputError

# The arrays a dataset file may hold; anything else in it is never read.
DATASET_ARRAYS = ("x_train", "y_train", "x_test", "y_test", "num_classes")
# numpy dtype kinds a dataset array may have (boolean, signed, unsigned, float), at most 8 bytes each.
NUMERIC_KINDS = frozenset("biuf")
# safetensors dtypes numpy holds; bfloat16 and float8 have no numpy type.
SAFETENSORS_NUMPY_DTYPES = frozenset(
    {"F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL"}
)


def check_array_names(held: list[str], field: str) -> None:
    """x_train and y_train, and x_test with y_test or neither; a refusal lists the names the file does hold,
    so a file saved with other names (X, y, images) says so at once."""
    listed = f"; the file has {', '.join(repr(k[:60]) for k in sorted(held)[:12]) or 'no arrays'}"
    for key in ("x_train", "y_train"):
        if key not in held:
            raise InputError(f"{field}.{key}", f"is required{listed}", reason="DATASET_ARRAY_MISSING")
    if ("x_test" in held) != ("y_test" in held):
        missing = "y_test" if "x_test" in held else "x_test"
        message = f"is required when the other test array is given{listed}"
        raise InputError(f"{field}.{missing}", message, reason="DATASET_ARRAY_MISSING")
