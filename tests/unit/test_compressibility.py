"""Pruning-compressibility on cases with known answers (DESIGN.md section 8)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from effcap.capacity.analyses.compressibility import run_compressibility
from effcap.capacity.compression import methods
from effcap.capacity.data.datasets import digits
from effcap.capacity.engine.trainer import DeviceData, train_trial
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.specs import CompressibilitySpec, TrainingSpec

DATA = digits()
TRAINING = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=300)


def trained_mlp(hidden: int, labels: np.ndarray, seed: int = 0):
    spec = parse_architecture({"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": [hidden], "num_classes": 10})
    model = build_model(spec, seed=seed)
    tensors = DeviceData(*(torch.from_numpy(a) for a in (DATA.x_train, labels, DATA.x_test, DATA.y_test)))
    assert train_trial(model, tensors, TRAINING, seed).fitted
    return spec, model


@pytest.fixture(scope="module")
def true_label_model():
    return trained_mlp(64, DATA.y_train)


def test_global_magnitude_keeps_exactly_the_largest_weights():
    weights = {"a": torch.tensor([[3.0, -1.0], [0.5, 2.0]]), "b": torch.tensor([[-4.0, 0.1]])}
    pruned = methods.global_magnitude(weights, 0.5)
    assert sorted(float(v) for w in pruned.values() for v in w.flatten() if v != 0) == [-4.0, 2.0, 3.0]
    assert sum(int((w != 0).sum()) for w in methods.random_pruning(weights, 0.5, seed=0).values()) == 3


def test_quantization_and_low_rank_are_exact_at_their_limits():
    w = {"w": torch.randn(6, 5, generator=torch.Generator().manual_seed(0))}
    assert torch.allclose(methods.low_rank(w, 1.0)[0]["w"], w["w"], atol=1e-5)
    eight_bit = methods.quantize_per_channel(w, 8)["w"]
    assert (eight_bit - w["w"]).abs().max() <= w["w"].abs().amax(dim=1, keepdim=True).max() / 127
    assert len(torch.unique(methods.quantize_per_channel(w, 2)["w"][0])) <= 3


def test_truncation_by_rank_keeps_that_share_of_the_rank_and_is_the_best_approximation():
    generator = torch.Generator().manual_seed(0)
    rank_two = {"w": torch.randn(8, 2, generator=generator) @ torch.randn(2, 6, generator=generator)}
    kept, ranks = methods.low_rank_by_rank(rank_two, 2 / 6)
    assert ranks == {"w": 2} and torch.allclose(kept["w"], rank_two["w"], atol=1e-5)  # a rank-2 matrix loses nothing
    w = {"w": torch.randn(8, 6, generator=generator)}
    half, ranks = methods.low_rank_by_rank(w, 0.5)
    s = torch.linalg.svdvals(w["w"].double())
    assert ranks == {"w": 3}
    # Eckart-Young: the error of the best rank-3 approximation is the norm of the dropped singular values.
    assert float(torch.linalg.norm((half["w"] - w["w"]).double())) == pytest.approx(float(s[3:].norm()), rel=1e-5)
    assert methods.low_rank_by_rank(w, 0.01)[1] == {"w": 1}


def test_a_model_padded_with_dead_units_is_compressible_by_their_share_with_no_accuracy_change(true_label_model):
    spec, model = true_label_model
    state = model.state_dict()
    # Add hidden units with zero in- and out-weights until they hold half of the prunable weights.
    live = 64 * (64 + 10)
    dead_units = live // (64 + 10)
    padded_spec = spec.model_copy(update={"hidden_sizes": (64 + dead_units,)})
    padded = {
        "hidden.0.weight": torch.cat([state["hidden.0.weight"], torch.zeros(dead_units, 64)]),
        "hidden.0.bias": torch.cat([state["hidden.0.bias"], torch.zeros(dead_units)]),
        "head.weight": torch.cat([state["head.weight"], torch.zeros(10, dead_units)], dim=1),
        "head.bias": state["head.bias"],
    }
    spec_run = CompressibilitySpec(methods=["magnitude_global"], tolerance=0.0, sensitivity=False, sparsities=[0.0, 0.25, 0.5, 0.75])
    result = run_compressibility(padded_spec, padded, DATA, spec_run, 0, torch.device("cpu"))
    at_half = next(p for p in result.points if p.level == 0.5)
    assert at_half.accuracy == result.baseline_accuracy and at_half.train_accuracy == result.baseline_train_accuracy
    assert result.compressibility["magnitude_global"] >= 0.5
    assert at_half.compression_ratio == pytest.approx(result.parameters / at_half.nonzero_parameters)


def test_random_pruning_degrades_before_magnitude_pruning(true_label_model):
    spec, model = true_label_model
    run = CompressibilitySpec(methods=["magnitude_global", "random"], sensitivity=False)
    result = run_compressibility(spec, model.state_dict(), DATA, run, 0, torch.device("cpu"))
    at = {(p.method, p.level): p.accuracy for p in result.points}
    assert at[("random", 0.7)] < at[("magnitude_global", 0.7)] - 0.1
    assert result.compressibility["random"] < result.compressibility["magnitude_global"]


def test_a_model_trained_on_random_labels_is_less_compressible():
    """Zhou et al. (2019): models fitted to random labels need more of their weights."""
    random_labels = np.random.default_rng(0).integers(0, 10, len(DATA.y_train))
    spec, memorised = trained_mlp(512, random_labels)
    _, learnt = trained_mlp(512, DATA.y_train)
    run = CompressibilitySpec(methods=["magnitude_global"], sensitivity=False)
    # Each model is audited on the training set it was fitted to.
    random_result = run_compressibility(spec, memorised.state_dict(), dataclasses.replace(DATA, y_train=random_labels), run, 0, torch.device("cpu"))
    true_result = run_compressibility(spec, learnt.state_dict(), DATA, run, 0, torch.device("cpu"))
    assert random_result.train_compressibility["magnitude_global"] < true_result.train_compressibility["magnitude_global"]


def test_every_point_carries_sizes_code_length_and_the_bound_pays_for_the_search(true_label_model):
    spec, model = true_label_model
    result = run_compressibility(spec, model.state_dict(), DATA, CompressibilitySpec(sensitivity=True), 0, torch.device("cpu"))
    dense = next(p for p in result.points if p.method == "magnitude_global" and p.level == 0.0)
    assert dense.compression_ratio == 1.0 and dense.speedup == pytest.approx(1.0)
    # C(P, P) = 1: keeping everything costs no position bits, only the count kept (log2(P + 1) bits).
    assert dense.code_bits == pytest.approx(32 * result.parameters + math.log2(result.parameters + 1))
    assert {s.layer for s in result.sensitivities} == {"hidden.0", "head"}
    bound = result.bound
    assert bound.hyperparameter_bits > 0 and bound.n == 1297 and not result.n_from_spec
    assert bound.kl <= bound.hoeffding and bound.catoni >= bound.kl - 1e-3


def test_stable_and_effective_rank_of_known_matrices():
    identity = torch.eye(4)
    assert methods.stable_rank(identity) == pytest.approx(4.0) and methods.effective_rank(identity) == pytest.approx(4.0)
    rank_one = torch.outer(torch.arange(1.0, 5.0), torch.ones(3))
    assert methods.stable_rank(rank_one) == pytest.approx(1.0) and methods.effective_rank(rank_one) == pytest.approx(1.0, abs=1e-6)


def test_structured_pruning_removes_exactly_the_dead_units_and_computes_the_same_outputs(true_label_model):
    from effcap.capacity.compression.structured import structured_prune

    spec, model = true_label_model
    state = model.state_dict()
    padded_spec = spec.model_copy(update={"hidden_sizes": (128,)})
    padded = {
        "hidden.0.weight": torch.cat([state["hidden.0.weight"], torch.zeros(64, 64)]),
        "hidden.0.bias": torch.cat([state["hidden.0.bias"], torch.zeros(64)]),
        "head.weight": torch.cat([state["head.weight"], torch.zeros(10, 64)], dim=1),
        "head.bias": state["head.bias"],
    }
    pruned = structured_prune(padded_spec, padded, 0.5)
    small_spec, small_state = pruned.spec, pruned.state
    assert small_spec.hidden_sizes == (64,)
    torch.testing.assert_close(small_state["hidden.0.weight"], state["hidden.0.weight"])  # the live units, in order
    big, small = build_model(padded_spec), build_model(small_spec)
    big.load_state_dict(padded)
    small.load_state_dict(small_state)
    x = torch.from_numpy(DATA.x_test)
    torch.testing.assert_close(small(x), big(x))
    result = run_compressibility(padded_spec, padded, DATA, CompressibilitySpec(methods=["structured"], sparsities=[0.0, 0.5, 0.75], sensitivity=False), 0, torch.device("cpu"))
    at_half = next(p for p in result.points if p.level == 0.5)
    dense = next(p for p in result.points if p.level == 0.0)
    assert at_half.accuracy == result.baseline_accuracy and at_half.nonzero_parameters == 64 * 64 + 64 + 10 * 64 + 10
    assert 0 < at_half.train_loss == pytest.approx(dense.train_loss, rel=1e-5) and at_half.loss == pytest.approx(dense.loss, rel=1e-5)
    assert at_half.measured_speedup > 0 and result.compressibility["structured"] >= 0.5


def test_recovery_fine_tuning_keeps_masks_and_recovers_accuracy(true_label_model):
    spec, model = true_label_model
    finetune = TrainingSpec(learning_rate=0.05, lr_decay_per_epoch=1.0)
    run = CompressibilitySpec(methods=["magnitude_global"], sparsities=[0.0, 0.9, 0.95], bisection_steps=0, sensitivity=False, finetune_steps=200, finetune=finetune)
    result = run_compressibility(spec, model.state_dict(), DATA, run, 0, torch.device("cpu"))
    one_shot = {p.level: p for p in result.points if p.method == "magnitude_global"}
    tuned = {p.level: p for p in result.points if p.method == "magnitude_global+finetune"}
    assert set(tuned) == {0.9, 0.95}
    for level in tuned:
        assert tuned[level].nonzero_parameters <= one_shot[level].nonzero_parameters  # masks stayed fixed
    assert tuned[0.95].accuracy > one_shot[0.95].accuracy + 0.05
    assert result.compressibility["magnitude_global+finetune"] >= result.compressibility["magnitude_global"]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_structured_channel_removal_through_batchnorm_keeps_the_function_of_live_channels(batch_norm):
    from effcap.capacity.compression.structured import structured_prune

    spec = parse_architecture({"family": "small_cnn", "input_shape": [1, 8, 8], "channels": [6, 8], "batch_norm": batch_norm, "num_classes": 10})
    model = build_model(spec, seed=0).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # Kill half the channels of each block: nothing flows out of them.
    for i, width in enumerate(spec.channels):
        following = "head.weight" if i == 1 else "features.2.0.weight"
        state[following][:, width // 2 :] = 0
        if batch_norm:
            state[f"features.{2 * i}.1.running_var"].uniform_(0.5, 2.0)
    model.load_state_dict(state)
    pruned = structured_prune(spec, state, 0.5)
    small_spec, small_state = pruned.spec, pruned.state
    assert small_spec.channels == (3, 4)
    small = build_model(small_spec).eval()
    small.load_state_dict(small_state)
    x = torch.from_numpy(DATA.x_test[:50])
    torch.testing.assert_close(small(x), model(x), rtol=1e-5, atol=1e-5)
