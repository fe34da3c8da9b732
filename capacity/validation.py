"""Turning pydantic validation failures into InputError with a field path users recognise."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from effcap.capacity.errors import InputError

ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model_cls: type[ModelT], data: Any, field_prefix: str) -> ModelT:
    """Validate `data` as `model_cls`; on failure raise InputError naming the first bad field."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(field_path(field_prefix, first["loc"]), error_text(first), reason="INVALID_SPEC") from None


def error_text(error: dict[str, Any]) -> str:
    """A validator's own message, without pydantic's "Value error, " prefix, which means nothing to users."""
    raised = error.get("ctx", {}).get("error")
    return str(raised) if error["type"] == "value_error" and raised is not None else error["msg"]


def field_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    """pydantic's location as the API names fields: spec.randomization.conditions[0].corruption."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "":
            path = f"{path}.{part}" if path else str(part)
    return path
