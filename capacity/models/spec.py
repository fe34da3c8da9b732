"""Architecture specs: declarative descriptions of a network, so a checkpoint is data, not code.

A spec is a JSON object with a "family" key. It travels in the audit request or in the
checkpoint's safetensors metadata under "effcap.arch".
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from effcap.capacity.errors import InputError
from effcap.capacity.validation import validated

MAX_INPUT_ELEMENTS = 1 << 24  # 16M input coordinates: far beyond any audit we can train
MAX_WIDTH = 1 << 16


class MLPSpec(BaseModel):
    """A fully connected ReLU-family network on flattened inputs (Zhang et al.'s MLP 1x512, 3x512)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["mlp"] = "mlp"
    input_shape: tuple[int, ...] = Field(min_length=1, max_length=4)
    num_classes: int = Field(ge=1, le=100_000)
    hidden_sizes: tuple[int, ...] = Field(default=(512,), max_length=64)
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    bias: bool = True

    @field_validator("input_shape")
    @classmethod
    def _positive_bounded_input(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 for d in shape):
            raise ValueError("every dimension must be at least 1")
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            raise ValueError(f"at most {MAX_INPUT_ELEMENTS} input elements")
        return shape

    @field_validator("hidden_sizes")
    @classmethod
    def _widths_in_range(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= w <= MAX_WIDTH for w in sizes):
            raise ValueError(f"every width must be in [1, {MAX_WIDTH}]")
        return sizes


ArchitectureSpec = MLPSpec
FAMILIES: dict[str, type[BaseModel]] = {"mlp": MLPSpec}


def parse_architecture(obj: Any, field: str = "spec.architecture") -> ArchitectureSpec:
    """Validate a JSON-like architecture description; errors name the field inside it."""
    if not isinstance(obj, dict):
        raise InputError(field, "must be a JSON object with a 'family' key", reason="INVALID_SPEC")
    family = obj.get("family")
    if family not in FAMILIES:
        raise InputError(f"{field}.family", f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}", reason="INVALID_SPEC")
    return validated(FAMILIES[family], obj, field)
