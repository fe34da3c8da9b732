"""JSON from untrusted sources (safetensors headers, embedded architectures, page tokens), bounded.

Python's json module accepts NaN and Infinity, parses nesting until the interpreter's recursion
limit (a RecursionError, not a ValueError), and numbers of any size; each of these used to reach the
server as an unexpected exception. Here they are refused as bad input naming the field: nesting
deeper than any spec effcap reads, non-finite numbers, and anything json itself rejects.
"""

from __future__ import annotations

import json
import math
from typing import Any

from effcap.capacity.errors import InputError

# Architecture specs nest a few levels (a graph: nodes -> node -> attributes -> lists); 32 is ample.
MAX_DEPTH = 32


def load_json(text: str | bytes, field: str, reason: str = "INVALID_JSON") -> Any:
    """Parse JSON, refusing invalid text, NaN/Infinity and nesting deeper than MAX_DEPTH."""
    try:
        value = json.loads(text)  # NaN/Infinity parse, and check_json_value names where they are
    except RecursionError:
        raise InputError(
            field, f"is nested too deeply to be JSON effcap reads (at most {MAX_DEPTH} levels)", reason=reason
        ) from None
    except ValueError as error:  # JSONDecodeError, integers past Python's digit limit
        raise InputError(field, f"is not valid JSON: {error}", reason=reason) from None
    check_json_value(value, field, reason)
    return value


def check_json_value(value: Any, field: str, reason: str = "INVALID_JSON") -> None:
    """Refuse nesting deeper than MAX_DEPTH and non-finite floats, naming the path to the first one."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(field, f"is nested more than {MAX_DEPTH} levels deep (at {path})", reason=reason)
        if isinstance(item, float) and not math.isfinite(item):
            raise InputError(path, f"must be a finite number, got {item}", reason=reason)
        if isinstance(item, dict):
            stack.extend((child, f"{path}.{key}", depth + 1) for key, child in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))

