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
        path = ".".join(str(part) for part in (field_prefix, *first["loc"]) if part != "")
        raise InputError(path, first["msg"], reason="INVALID_SPEC") from None
