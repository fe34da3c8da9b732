"""The stacked-trial engine computes what one-at-a-time training computes, trial for trial."""

import numpy as np
import pytest
import torch
from torch.func import stack_module_state

from effcap.capacity.engine import strategy as engine_strategy
from effcap.capacity.engine.batched import SharedData, TrialInputs, stack_compute, train_batched
from effcap.capacity.engine.grouped import folds, grouped_forward
from effcap.capacity.engine.strategy import EngineOptions, choose_strategy, stacking_candidates, train_trials
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.specs import TrainingSpec

MLP = parse_architecture({"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": [64], "num_classes": 10})
CNN_BN = parse_architecture({"family": "small_cnn", "input_shape": [1, 8, 8], "channels": [8, 16], "batch_norm": True, "num_classes": 10})
DIGITS = {"input_shape": [1, 8, 8], "num_classes": 10}
VIT = parse_architecture({"family": "vit", "patch_size": 2, "dim": 16, "depth": 2, "heads": 2, **DIGITS})


def data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.random((n, 1, 8, 8), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, n))
    return SharedData(x, x[:100], y[:100]), y


def trials_for(y, k=3, own_inputs=False):
    rng = np.random.default_rng(1)
    trials = []
    for i in range(k):
        labels = torch.from_numpy(rng.integers(0, 10, len(y))) if i else y
        x = torch.from_numpy(rng.random((len(y), 1, 8, 8), dtype=np.float32)) if own_inputs else None
        trials.append(TrialInputs(seed=10 + i, y_train=labels, x_train=x, x_test=None if x is None else x[:100]))
    return trials


@pytest.mark.parametrize("architecture", [MLP, CNN_BN, VIT], ids=["mlp", "cnn-batchnorm", "vit"])
@pytest.mark.parametrize("own_inputs", [False, True], ids=["shared-inputs", "own-inputs"])
def test_stacked_and_sequential_training_agree(architecture, own_inputs):
    shared, y = data()
    trials = trials_for(y, own_inputs=own_inputs)
    training = TrainingSpec(learning_rate=0.05, lr_decay_per_epoch=0.9, batch_size=32, max_epochs=3, weight_decay=1e-3)
    stacked, _ = train_trials(architecture, shared, trials, training, options=EngineOptions(strategy="vmap"))
    sequential, _ = train_trials(architecture, shared, trials, training, options=EngineOptions(strategy="sequential"))
    for a, b in zip(stacked, sequential):
        assert [p.step for p in a.curve] == [p.step for p in b.curve]
        np.testing.assert_allclose([p.train_loss for p in a.curve], [p.train_loss for p in b.curve], rtol=1e-4)
        np.testing.assert_allclose([p.train_accuracy for p in a.curve], [p.train_accuracy for p in b.curve], atol=2 / len(y))
        assert a.test_accuracy == pytest.approx(b.test_accuracy, abs=0.02)
    # Trials differ from one another: each has its own labels and initialisation.
    assert len({round(o.curve[-1].train_loss, 6) for o in stacked}) == 3


@pytest.mark.parametrize("stacking", ["vmap", "grouped"])
def test_stacked_and_sequential_training_fit_at_the_same_step(stacking):
    """A threshold below 1 is reached at an exact count of correct answers (19 of 20 for 0.95), so
    both engines must stop the same trials at the same step."""
    architecture = parse_architecture({"family": "mlp", "input_shape": [4], "hidden_sizes": [64], "num_classes": 2})
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((20, 4)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, 20))
    trials = [TrialInputs(seed=s, y_train=y) for s in range(3)]
    training = TrainingSpec(learning_rate=0.05, lr_decay_per_epoch=1.0, batch_size=8, max_epochs=200, fit_threshold=0.95)
    stacked, _ = train_trials(architecture, SharedData(x, x, y), trials, training, options=EngineOptions(strategy=stacking))
    sequential, _ = train_trials(architecture, SharedData(x, x, y), trials, training, options=EngineOptions(strategy="sequential"))
    assert all(o.fitted for o in sequential)
    assert [(o.fitted, o.epochs_to_fit, o.steps_to_fit, o.train_accuracy) for o in stacked] == [
        (o.fitted, o.epochs_to_fit, o.steps_to_fit, o.train_accuracy) for o in sequential
    ]
    assert {o.train_accuracy for o in stacked} <= {19 / 20, 1.0}


def test_a_fitted_trial_leaves_the_stack_and_the_others_are_unaffected():
    shared, y = data(n=40)
    easy = TrialInputs(seed=1, y_train=torch.zeros_like(y))  # one class: fitted after the first epoch
    hard = TrialInputs(seed=2, y_train=torch.from_numpy(np.random.default_rng(3).integers(0, 10, 40)))
    training = TrainingSpec(learning_rate=0.05, lr_decay_per_epoch=1.0, batch_size=8, max_epochs=4)
    finished = []
    together = train_batched(MLP, shared, [easy, hard], training, on_trial_finished=lambda i, o: finished.append(i))
    alone = train_batched(MLP, shared, [hard], training)[0]
    assert together[0].fitted and together[0].epochs_to_fit == 1 and together[0].steps_run == 5
    assert finished[0] == 0  # the easy one ended first
    assert [p.train_loss for p in together[1].curve] == pytest.approx([p.train_loss for p in alone.curve], rel=1e-5)
    assert together[1].steps_run == alone.steps_run == 20


def test_out_of_memory_halves_the_stack_instead_of_failing(monkeypatch):
    shared, y = data(n=40)
    trials = trials_for(y, k=4)
    real = engine_strategy.train_batched
    sizes = []

    def limited(architecture, shared, batch, *args, **kwargs):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.OutOfMemoryError("simulated: only one trial fits")
        return real(architecture, shared, batch, *args, **kwargs)

    monkeypatch.setattr(engine_strategy, "train_batched", limited)
    training = TrainingSpec(learning_rate=0.05, batch_size=8, max_epochs=1)
    outcomes, strategy = train_trials(MLP, shared, trials, training, options=EngineOptions(strategy="vmap"))
    assert strategy == "vmap" and len(outcomes) == 4 and all(o.steps_run == 5 for o in outcomes)
    assert sizes == [4, 2, 1, 1, 2, 1, 1]


def test_strategy_depends_only_on_architecture_device_and_trial_count():
    small = parse_architecture({"family": "mlp", "input_shape": [64], "hidden_sizes": [128], "num_classes": 10})
    large = parse_architecture({"family": "mlp", "input_shape": [64], "hidden_sizes": [512, 512], "num_classes": 10})
    narrow_resnet = parse_architecture({"family": "resnet20", "input_shape": [1, 8, 8], "blocks_per_stage": 1, "stage_widths": [4, 8, 16], "num_classes": 10})
    cnn = parse_architecture({"family": "small_cnn", "input_shape": [1, 8, 8], "channels": [16, 32], "num_classes": 10})
    assert choose_strategy(small, torch.device("cpu"), 8) == "grouped"
    # 48.5k multiply-adds, but 5.4k per layer
    assert choose_strategy(narrow_resnet, torch.device("cpu"), 8) == "grouped"
    assert choose_strategy(cnn, torch.device("cpu"), 8) == "sequential"  # 83k over 3 layers
    assert choose_strategy(large, torch.device("cpu"), 8) == "sequential"
    assert choose_strategy(large, torch.device("cuda"), 8) == "vmap"


def test_one_trial_on_the_cpu_trains_as_the_plain_module_not_as_a_stack_of_one():
    small = parse_architecture({"family": "mlp", "input_shape": [64], "hidden_sizes": [128], "num_classes": 10})
    assert choose_strategy(small, torch.device("cpu"), 1) == "sequential"
    assert choose_strategy(small, torch.device("cpu"), 2) == "grouped"
    assert choose_strategy(VIT, torch.device("cpu"), 1) == "sequential"
    assert choose_strategy(small, torch.device("cuda"), 1) == "vmap"  # accelerators measure instead
    shared, y = data(n=64)
    _, alone = train_trials(MLP, shared, trials_for(y, k=1), TrainingSpec(max_epochs=1))
    _, stacked = train_trials(MLP, shared, trials_for(y, k=2), TrainingSpec(max_epochs=1))
    assert (alone, stacked) == ("sequential", "grouped")


def test_families_that_do_not_fold_are_never_offered_the_grouped_strategy():
    assert not folds(VIT) and all(folds(FOLDED[name]) for name in FOLDED)
    assert choose_strategy(VIT, torch.device("cpu"), 8) == "vmap"  # small enough to stack, but it does not fold
    wide_vit = VIT.model_copy(update={"dim": 256, "heads": 4})  # 17 tokens x 256 x 1,024 multiply-adds per MLP Linear
    assert choose_strategy(wide_vit, torch.device("cpu"), 8) == "sequential"
    assert stacking_candidates(VIT) == ("vmap",) and stacking_candidates(CNN_BN) == ("vmap", "grouped")
    shared, y = data(n=64)
    best, seconds = engine_strategy.measure_strategy(VIT, shared, trials_for(y, k=2), TrainingSpec(batch_size=16))
    assert best == "vmap" and set(seconds) == {"vmap"}
    with pytest.raises(ValueError, match="no folded forward for family vit"):
        grouped_forward(VIT)


FOLDED = {
    "mlp": MLP,
    "cnn-batchnorm": CNN_BN,
    "lenet5": parse_architecture({"family": "lenet5", "input_shape": [1, 12, 12], "conv_channels": [4, 6], "fc_sizes": [16, 12], "num_classes": 10}),
    "alexnet-lrn": parse_architecture({"family": "alexnet_small", "input_shape": [1, 8, 8], "conv_channels": [12, 10], "fc_sizes": [16, 12], "num_classes": 10}),
    "inception-concat": parse_architecture({"family": "inception_small", "input_shape": [1, 12, 12], "conv_widths": [4, 3, 2, 2, 3, 3, 2, 2, 3, 2, 2, 3, 2, 2, 3, 2, 3, 3, 2], "num_classes": 10}),
    "resnet-option-a": parse_architecture({"family": "resnet20", "input_shape": [1, 8, 8], "blocks_per_stage": 2, "stage_widths": [3, 4, 6], "num_classes": 10}),
    "resnet-pruned-shortcuts": parse_architecture(
        {"family": "resnet20", "input_shape": [1, 8, 8], "blocks_per_stage": 1, "stage_widths": [4, 3, 5], "shortcut_sources": [[2, -1, 0], [-1, 1, 1, 0, 2]], "num_classes": 10}
    ),
    "vgg-batchnorm": parse_architecture({"family": "vgg", "config": [4, "M", 6, 6, "M", 8], **DIGITS}),
    "vgg-no-batchnorm": parse_architecture({"family": "vgg", "config": [4, "M", 6], "batch_norm": False, **DIGITS}),
    "resnet-projection": parse_architecture(
        {"family": "resnet", "blocks_per_stage": [2, 1], "width": 3, "inner_widths": [2, 4, 5], **DIGITS}
    ),
    "resnet-imagenet-stem": parse_architecture(
        dict(DIGITS, input_shape=[1, 16, 16], family="resnet", stem="imagenet", blocks_per_stage=[1, 1], width=3)
    ),
    "wide-resnet-projection": parse_architecture(
        {"family": "wide_resnet", "depth": 16, "widen_factor": 2, "stem_width": 3, "stage_widths": [4, 5, 6], **DIGITS}
    ),
    "wide-resnet-identity": parse_architecture(
        {"family": "wide_resnet", "depth": 10, "widen_factor": 1, "stem_width": 4, "stage_widths": [4, 6, 8], **DIGITS}
    ),
}


@pytest.mark.parametrize("name", list(FOLDED))
def test_the_folded_network_computes_vmaps_gradients_statistics_and_logits_exactly(name):
    """In float64 the folding is exact: same per-trial gradients, BatchNorm updates and eval logits."""
    architecture = FOLDED[name]
    k, b = 3, 16
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(k, b, *architecture.input_shape, dtype=torch.float64, generator=generator)
    y = torch.randint(0, 10, (k, b), generator=generator)
    params, buffers = stack_module_state([build_model(architecture, seed=i).double() for i in range(k)])
    params = {n: p.detach() for n, p in params.items()}
    base = build_model(architecture, device="meta")
    results = {}
    for stacking in ("vmap", "grouped"):
        own_buffers = {n: v.clone() for n, v in buffers.items()}
        compute = stack_compute(stacking, architecture, base, torch.device("cpu"))
        base.train()  # vmap's forward follows the module's mode; the folded one takes it as an argument
        grads, _, _ = compute.gradients(params, own_buffers, x, y)
        base.eval()
        results[stacking] = grads, own_buffers, compute.predict(params, own_buffers, x[0], False)
    (g_vmap, b_vmap, logits_vmap), (g_grouped, b_grouped, logits_grouped) = results["vmap"], results["grouped"]
    for name_ in g_vmap:
        torch.testing.assert_close(g_grouped[name_], g_vmap[name_], rtol=1e-10, atol=1e-12)
    for name_ in b_vmap:
        torch.testing.assert_close(b_grouped[name_], b_vmap[name_], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(logits_grouped, logits_vmap, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in FOLDED if n != "mlp"])
def test_the_channels_last_fold_computes_what_the_nchw_fold_computes(name):
    """CUDA runs the fold channels-last; its per-trial views must give the same numbers."""
    architecture = FOLDED[name]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, *architecture.input_shape, dtype=torch.float64, generator=generator)
    params, buffers = stack_module_state([build_model(architecture, seed=i).double() for i in range(3)])
    params = {n: p.detach() for n, p in params.items()}
    for shared in (False, True):
        inputs = x[0] if shared else x
        outputs = [grouped_forward(architecture, channels_last=cl)(params, {n: v.clone() for n, v in buffers.items()}, inputs, True, shared) for cl in (False, True)]
        torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["mlp", "cnn-batchnorm", "lenet5"])
@pytest.mark.parametrize("own_inputs", [False, True], ids=["shared-inputs", "own-inputs"])
def test_folded_grouped_and_vmapped_training_agree(name, own_inputs):
    """Whole trainings in float32 (tiny BatchNorm nets amplify rounding, so these three only)."""
    architecture = FOLDED[name]
    rng = np.random.default_rng(0)
    shape = architecture.input_shape
    x = torch.from_numpy(rng.random((300, *shape), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, 300))
    shared = SharedData(x, x[:100], y[:100])
    trials = [
        TrialInputs(seed=10 + i, y_train=torch.from_numpy(rng.integers(0, 10, 300)), **({"x_train": xi, "x_test": xi[:100]} if own_inputs else {}))
        for i, xi in enumerate(torch.from_numpy(rng.random((3, 300, *shape), dtype=np.float32)))
    ]
    training = TrainingSpec(learning_rate=0.05, lr_decay_per_epoch=0.9, batch_size=32, max_epochs=3, weight_decay=1e-3)
    grouped, used = train_trials(architecture, shared, trials, training, options=EngineOptions(strategy="grouped"))
    vmapped, _ = train_trials(architecture, shared, trials, training, options=EngineOptions(strategy="vmap"))
    assert used == "grouped"
    for a, b in zip(grouped, vmapped):
        np.testing.assert_allclose([p.train_loss for p in a.curve], [p.train_loss for p in b.curve], rtol=1e-4)
        assert a.test_accuracy == pytest.approx(b.test_accuracy, abs=0.02)
    assert len({round(o.curve[-1].train_loss, 6) for o in grouped}) == 3


def test_trials_finished_before_memory_ran_out_are_kept_not_retrained(monkeypatch):
    shared, y = data(n=40)
    trials = trials_for(y, k=3)
    real = engine_strategy.train_batched
    batches, reported = [], []

    def first_finishes_then_oom(
        architecture, shared, batch, training, init_state, on_epoch=None, on_trial_finished=None, stacking="vmap",
        screen_fit_check=True,
    ):
        batches.append([t.seed for t in batch])
        if len(batch) == 3:
            [outcome] = real(architecture, shared, batch[:1], training, init_state, stacking=stacking)
            on_trial_finished(0, outcome)
            raise torch.OutOfMemoryError("simulated: ran out after the first trial finished")
        return real(architecture, shared, batch, training, init_state, on_epoch=on_epoch, on_trial_finished=on_trial_finished, stacking=stacking)

    monkeypatch.setattr(engine_strategy, "train_batched", first_finishes_then_oom)
    training = TrainingSpec(learning_rate=0.05, batch_size=8, max_epochs=1)
    outcomes, _ = train_trials(MLP, shared, trials, training, options=EngineOptions(strategy="vmap"), on_trial_finished=lambda i, o: reported.append(i))
    assert sorted(reported) == [0, 1, 2]  # each trial reported once
    assert batches == [[10, 11, 12], [11], [12]]  # trial 0 (seed 10) was not trained again
    assert all(o.steps_run == 5 for o in outcomes)


def test_the_probe_times_every_stacking_candidate():
    shared, y = data(n=64)
    best, seconds = engine_strategy.measure_strategy(CNN_BN, shared, trials_for(y, k=2), TrainingSpec(batch_size=16))
    assert set(seconds) == {"vmap", "grouped"} and all(s > 0 for s in seconds.values()) and seconds[best] == min(seconds.values())


def test_the_compiled_folded_step_computes_the_eager_gradients():
    """torch.compile must not change the numbers, down to one trial left in the stack (K=1), for a
    ResNet whose pruned shortcuts copy channels out of order (Inductor once got that wrong)."""
    architecture = FOLDED["resnet-pruned-shortcuts"]
    generator = torch.Generator().manual_seed(0)
    for k in (1, 2):
        x = torch.randn(k, 16, *architecture.input_shape, generator=generator)
        y = torch.randint(0, 10, (k, 16), generator=generator)
        params, buffers = stack_module_state([build_model(architecture, seed=i) for i in range(k)])
        params = {n: p.detach() for n, p in params.items()}
        base = build_model(architecture, device="meta")
        grads = [
            stack_compute(stacking, architecture, base, torch.device("cpu")).gradients(
                params, {n: v.clone() for n, v in buffers.items()}, x, y
            )[0]
            for stacking in ("grouped", "grouped-compiled")
        ]
        for name in grads[0]:
            torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-5)


def test_a_compiled_stack_trains_like_the_eager_one():
    shared, y = data(n=96)
    trials = trials_for(y, k=2)
    training = TrainingSpec(learning_rate=0.05, batch_size=32, max_epochs=2, lr_decay_per_epoch=1.0)
    compiled, used = train_trials(CNN_BN, shared, trials, training, options=EngineOptions(strategy="grouped-compiled"))
    eager, _ = train_trials(CNN_BN, shared, trials, training, options=EngineOptions(strategy="grouped"))
    assert used == "grouped-compiled"
    for a, b in zip(compiled, eager):
        np.testing.assert_allclose([p.train_loss for p in a.curve], [p.train_loss for p in b.curve], rtol=1e-4)


def test_timing_the_strategies_halves_the_stack_when_memory_runs_out(monkeypatch):
    shared, y = data(n=64)
    trials = trials_for(y, k=4)
    timed = []

    def limited(architecture, shared, batch, training):
        timed.append(len(batch))
        if len(batch) > 1:
            raise torch.OutOfMemoryError("simulated: only one trial fits")
        return "grouped", {"vmap": 2.0, "grouped": 1.0}

    monkeypatch.setattr(engine_strategy, "measure_strategy", limited)
    assert engine_strategy._measure_within_memory(MLP, shared, trials, TrainingSpec()) == "grouped"
    assert timed == [4, 2, 1]
    monkeypatch.setattr(engine_strategy, "measure_strategy", lambda *args: (_ for _ in ()).throw(torch.OutOfMemoryError("none fits")))
    assert engine_strategy._measure_within_memory(MLP, shared, trials, TrainingSpec()) == "vmap"


def test_a_wide_resnet_with_dropout_trains_folded_with_each_trial_dropping_its_own_units():
    """Dropout makes folded and vmapped steps differ (different masks), so this checks what can be checked: the
    folded step drops units in training only, differently per trial, and trains."""
    architecture = parse_architecture(
        {"family": "wide_resnet", "depth": 10, "widen_factor": 1, "stage_widths": [16, 8, 8], "dropout": 0.5, **DIGITS}
    )
    params, buffers = stack_module_state([build_model(architecture, seed=0) for _ in range(2)])  # two identical trials
    params = {n: p.detach() for n, p in params.items()}
    x = torch.randn(8, *architecture.input_shape)
    forward = grouped_forward(architecture)
    evaluated = forward(params, {n: v.clone() for n, v in buffers.items()}, x, False, True)
    trained = forward(params, {n: v.clone() for n, v in buffers.items()}, x, True, True)
    torch.testing.assert_close(evaluated[0], evaluated[1])  # same weights, no dropout: the same logits
    assert not torch.allclose(trained[0], trained[1])  # in training each trial draws its own mask
    shared, y = data(n=96)
    training, grouped = TrainingSpec(batch_size=32, max_epochs=2), EngineOptions(strategy="grouped")
    outcomes, used = train_trials(architecture, shared, trials_for(y, k=2), training, options=grouped)
    assert used == "grouped" and all(np.isfinite(o.train_loss) and o.steps_run == 6 for o in outcomes)
