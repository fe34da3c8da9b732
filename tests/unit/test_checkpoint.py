"""Checkpoints are safetensors checked tensor by tensor against a declarative architecture."""

import pytest
import torch
from safetensors.torch import save_file

from effcap.capacity.checkpoint import load_checkpoint, save_checkpoint
from effcap.capacity.errors import InputError
from effcap.capacity.models import MLPSpec, build_model, count_parameters

SPEC = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(32, 16))


def test_roundtrip_keeps_weights_and_architecture(tmp_path):
    model = build_model(SPEC, seed=3)
    save_checkpoint(tmp_path / "m.safetensors", SPEC, model.state_dict())
    loaded = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded.architecture == SPEC
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict[name], tensor)


def test_parameter_count_matches_the_layer_arithmetic():
    assert count_parameters(build_model(SPEC)) == (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)


def test_same_seed_same_init_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = build_model(SPEC, seed=7), build_model(SPEC, seed=7)
    assert torch.equal(torch.rand(1), before)
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb)


def test_a_tensor_of_the_wrong_shape_is_named(tmp_path):
    other = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(32, 17))
    save_checkpoint(tmp_path / "m.safetensors", SPEC, build_model(other).state_dict())
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "m.safetensors")
    assert info.value.field == "model.hidden.1.weight"
    assert info.value.reason == "CHECKPOINT_SPEC_MISMATCH"
    assert "[17, 32]" in info.value.message and "[16, 32]" in info.value.message


def test_missing_and_extra_tensors_are_listed(tmp_path):
    state = build_model(SPEC).state_dict()
    del state["head.bias"]
    save_checkpoint(tmp_path / "m.safetensors", SPEC, state)
    with pytest.raises(InputError, match="head.bias"):
        load_checkpoint(tmp_path / "m.safetensors")
    state = build_model(SPEC).state_dict() | {"extra": torch.zeros(2)}
    save_checkpoint(tmp_path / "m.safetensors", SPEC, state)
    with pytest.raises(InputError, match="extra"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_without_embedded_architecture_the_request_must_give_one(tmp_path):
    save_file(build_model(SPEC).state_dict(), str(tmp_path / "bare.safetensors"))
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "bare.safetensors")
    assert info.value.field == "spec.architecture" and info.value.reason == "ARCHITECTURE_MISSING"
    loaded = load_checkpoint(tmp_path / "bare.safetensors", SPEC.model_dump(mode="json"))
    assert loaded.architecture == SPEC


def test_invalid_architecture_fields_are_named(tmp_path):
    save_file(build_model(SPEC).state_dict(), str(tmp_path / "bare.safetensors"))
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "bare.safetensors", {"family": "mlp", "input_shape": [64], "num_classes": 10, "hidden_sizes": [0]})
    assert info.value.field == "spec.architecture.hidden_sizes"
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "bare.safetensors", {"family": "transformer"})
    assert info.value.field == "spec.architecture.family"


def test_garbage_is_not_a_checkpoint(tmp_path):
    (tmp_path / "x").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "x")
    assert info.value.reason == "INVALID_CHECKPOINT"


def test_batchnorm_counters_are_integers_kept_when_present_and_optional(tmp_path):
    from effcap.capacity.models import parse_architecture

    spec = parse_architecture({"family": "small_cnn", "input_shape": [1, 8, 8], "channels": [4], "batch_norm": True, "num_classes": 10})
    state = build_model(spec, seed=0).state_dict()
    state["features.0.1.num_batches_tracked"] = torch.tensor(17)
    save_checkpoint(tmp_path / "m.safetensors", spec, state)
    assert int(load_checkpoint(tmp_path / "m.safetensors").state_dict["features.0.1.num_batches_tracked"]) == 17
    save_checkpoint(tmp_path / "m.safetensors", spec, {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")})
    build_model(spec).load_state_dict(load_checkpoint(tmp_path / "m.safetensors").state_dict)
    save_checkpoint(tmp_path / "m.safetensors", spec, state | {"features.0.1.num_batches_tracked": torch.tensor(1.5)})
    with pytest.raises(InputError, match="a counter is one integer") as info:
        load_checkpoint(tmp_path / "m.safetensors")
    assert info.value.field == "model.features.0.1.num_batches_tracked"


def test_weights_beyond_float32_range_and_float8_weights_are_refused_by_name(tmp_path):
    state = build_model(SPEC, seed=0).state_dict()
    huge = {**state, "head.weight": state["head.weight"].double().fill_(1e300)}  # finite in float64, inf in float32
    save_checkpoint(tmp_path / "huge.safetensors", SPEC, huge)
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "huge.safetensors")
    assert (info.value.field, info.value.reason) == ("model.head.weight", "CHECKPOINT_NOT_FINITE")
    save_checkpoint(tmp_path / "fp8.safetensors", SPEC, {k: v.to(torch.float8_e4m3fn) for k, v in state.items()})
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "fp8.safetensors")
    assert info.value.reason == "CHECKPOINT_SPEC_MISMATCH" and "float8_e4m3fn" in info.value.message
    save_checkpoint(tmp_path / "bf16.safetensors", SPEC, {k: v.to(torch.bfloat16) for k, v in state.items()})
    assert load_checkpoint(tmp_path / "bf16.safetensors").state_dict["head.weight"].dtype == torch.float32


def test_a_hundred_missing_tensors_are_counted_not_all_listed(tmp_path):
    wide = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(4,) * 64)
    save_checkpoint(tmp_path / "m.safetensors", SPEC, build_model(SPEC).state_dict())
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "m.safetensors", wide.model_dump(mode="json"))
    assert "missing 124 tensors" in info.value.message and "and 116 more" in info.value.message
    assert len(str(info.value)) < 2000
