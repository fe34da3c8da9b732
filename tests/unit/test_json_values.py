"""Bounded JSON: nesting, non-finite numbers and huge integers are refused naming the field."""

from __future__ import annotations

import pytest

from effcap.capacity.errors import InputError
from effcap.capacity.json_values import MAX_DEPTH, check_json_value, load_json


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_limit_is_read_and_one_more_level_is_refused():
    assert load_json(nested(MAX_DEPTH + 1), "f") is not None  # the outer list is level 0
    with pytest.raises(InputError, match="nested more than 32 levels") as info:
        load_json(nested(MAX_DEPTH + 2), "f")
    assert info.value.field == "f"


def test_nesting_past_the_interpreters_recursion_limit_is_an_input_error():
    with pytest.raises(InputError, match="nested too deeply") as info:
        load_json(nested(200_000), "spec.architecture", reason="INVALID_SPEC")
    assert (info.value.field, info.value.reason) == ("spec.architecture", "INVALID_SPEC")


@pytest.mark.parametrize(("text", "field"), [("NaN", "f"), ("[Infinity]", "f[0]"), ('{"a": -Infinity}', "f.a")])
def test_non_finite_constants_are_refused_where_they_are(text, field):
    with pytest.raises(InputError, match="must be a finite number") as info:
        load_json(text, "f")
    assert info.value.field == field


def test_an_overflowing_float_literal_is_refused_where_it_is():
    with pytest.raises(InputError, match="must be a finite number") as info:
        load_json('{"layers": [1, 1e999]}', "f")
    assert info.value.field == "f.layers[1]"


def test_an_integer_past_pythons_digit_limit_is_refused():
    with pytest.raises(InputError, match="not valid JSON"):
        load_json("1" + "0" * 5000, "f")


def test_a_python_value_with_nan_is_named_by_its_path():
    with pytest.raises(InputError) as info:
        check_json_value({"family": "mlp", "hidden_sizes": [64, float("nan")]}, "spec.architecture")
    assert info.value.field == "spec.architecture.hidden_sizes[1]"


def test_ordinary_json_comes_back_unchanged():
    assert load_json('{"a": [1, 2.5, "x", null, true, {"b": []}]}', "f") == {"a": [1, 2.5, "x", None, True, {"b": []}]}
