"""What every architecture spec has: the input shape it takes and how many logits it gives.

Its own module so that families defined elsewhere (imported graphs, capacity/graphs/) share it
without importing the built-in families, which in turn list every family in their union.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_INPUT_ELEMENTS = 1 << 24  # 16M input coordinates: far beyond any audit we can train


class SpecBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_shape: tuple[int, ...] = Field(min_length=1, max_length=4)
    num_classes: int = Field(ge=1, le=100_000)

    @field_validator("input_shape")
    @classmethod
    def _positive_bounded_input(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 for d in shape):
            raise ValueError("every dimension must be at least 1")
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            raise ValueError(f"at most {MAX_INPUT_ELEMENTS} input elements")
        return shape
