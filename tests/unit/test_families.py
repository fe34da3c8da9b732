"""The follow-up literature's families (ResNet-18/34, WRN, VGG, ViT) flow through everything the paper's do:
checkpoints, BatchNorm folding and layer tracing, norm measures, the Rademacher, randomization and
memorisation analyses, on tiny configurations of each (8x8 inputs, a few channels)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from effcap.capacity.analyses.memorization import run_memorization
from effcap.capacity.analyses.rademacher import run_rademacher
from effcap.capacity.analyses.randomization import run_randomization_test
from effcap.capacity.checkpoint import load_checkpoint, save_checkpoint
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.strategy import choose_strategy
from effcap.capacity.measures.layers import fold_batchnorm, weight_layers
from effcap.capacity.measures.norms import norm_measures
from effcap.capacity.models import build_model, count_parameters, parse_architecture
from effcap.capacity.models.flops import layer_multiply_adds
from effcap.capacity.specs import (
    Condition,
    ConditionKind,
    MemorizationSpec,
    RademacherSpec,
    RandomizationSpec,
    TrainingSpec,
)

DIGITS = {"input_shape": [1, 8, 8], "num_classes": 10}
CIFAR10 = {"input_shape": [3, 32, 32], "num_classes": 10}
TINY = {
    "resnet": parse_architecture({"family": "resnet", "blocks_per_stage": [1, 1], "width": 4, **DIGITS}),
    "wide_resnet": parse_architecture(
        {"family": "wide_resnet", "depth": 10, "widen_factor": 2, "stem_width": 4, "stage_widths": [4, 6, 8], **DIGITS}
    ),
    "vgg": parse_architecture({"family": "vgg", "config": [8, "M", 12, "M", 16], **DIGITS}),
    "vit": parse_architecture({"family": "vit", "patch_size": 2, "dim": 16, "depth": 2, "heads": 2, **DIGITS}),
}
FAST = TrainingSpec(learning_rate=0.05, lr_decay_per_epoch=1.0, batch_size=16, max_epochs=2)


def noise_dataset(n: int = 64, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    return Dataset("noise", x, rng.integers(0, 10, n), x[:16], rng.integers(0, 10, 16), num_classes=10)


def with_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so folding has work to do."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1, generator=generator)
            module.running_var.uniform_(0.5, 2, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.uniform_(-0.5, 0.5, generator=generator)
    return model.eval()


@pytest.mark.parametrize("name", list(TINY))
def test_a_trained_checkpoint_round_trips_with_its_batchnorm_counters(name, tmp_path):
    spec = TINY[name]
    model = build_model(spec, seed=0).train()
    for _ in range(3):  # three training-mode passes: statistics move and num_batches_tracked counts to 3
        model(torch.randn(8, *spec.input_shape))
    save_checkpoint(tmp_path / "m.safetensors", spec, model.state_dict())
    loaded = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded.architecture == spec
    assert loaded.state_dict.keys() == model.state_dict().keys()
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict[key], tensor), key
    counters = [v for k, v in loaded.state_dict.items() if k.endswith("num_batches_tracked")]
    assert all(int(c) == 3 for c in counters) and (len(counters) > 0) == (name != "vit")


# BatchNorms left after folding: the WRN's pre-activation bn1 of every block but the first (the stem conv's
# output has no other reader there) and its final bn read a residual sum, not a conv, and must stay.
REMAINING_BATCHNORMS = {"resnet": 0, "wide_resnet": 3, "vgg": 0, "vit": 0}


@pytest.mark.parametrize("name", list(TINY))
def test_folding_batchnorm_keeps_the_function_and_folds_exactly_where_a_conv_precedes(name):
    spec = TINY[name]
    model = with_statistics(build_model(spec, seed=0))
    folded = fold_batchnorm(model)
    x = torch.randn(4, *spec.input_shape)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == REMAINING_BATCHNORMS[name]


def test_weight_layers_follow_the_forward_pass():
    resnet = [layer.name for layer in weight_layers(build_model(TINY["resnet"]), (1, 8, 8))]
    blocks = ["layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0"]
    assert resnet == ["conv1", *blocks, "fc"]
    vit = weight_layers(build_model(TINY["vit"]), (1, 8, 8))
    first_block = ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2"]
    assert [layer.name for layer in vit[:5]] == ["patch_embed.proj", *first_block]
    assert vit[1].input_shape == (17, 16)  # 16 patches and the class token
    assert vit[-1].name == "head" and vit[-1].input_shape == (16,)
    wrn = weight_layers(build_model(TINY["wide_resnet"]), (1, 8, 8))
    shortcuts = ["layer1.0.shortcut", "layer2.0.shortcut", "layer3.0.shortcut"]
    assert [layer.name for layer in wrn if "shortcut" in layer.name] == shortcuts
    assert wrn[-2].input_shape == (6, 2, 2)  # layer3.0.shortcut: 1x1 conv on stage 2's 4x4 stream, subsampled


def test_a_resnet18_whose_last_stage_runs_at_1x1_is_traced_and_costed_without_being_changed():
    """torchvision's stem on 32x32 inputs leaves layer4 at 1x1: the one-example passes that find layers and
    count multiply-adds must run in eval mode (a training-mode BatchNorm refuses them, and would move its
    running statistics towards their zero input)."""
    spec = parse_architecture({"family": "resnet", "stem": "imagenet", "width": 4, **CIFAR10})
    model = build_model(spec, seed=0)  # in training mode, as built
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = weight_layers(model, (3, 32, 32))
    assert layers[-2].name == "layer4.1.conv2" and layers[-2].input_shape == (32, 1, 1)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert layer_multiply_adds(model, (3, 32, 32))["layer4.1.conv2"] == 32 * 32 * 9  # at 1x1: one output position


@pytest.mark.parametrize("name", list(TINY))
def test_norm_measures_are_finite_and_cover_every_weight_layer(name):
    spec = TINY[name]
    data = noise_dataset()
    model = with_statistics(build_model(spec, seed=0))
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    measures = norm_measures(model, spec.input_shape, x, y)
    assert measures.depth == len(weight_layers(model, spec.input_shape))
    assert all(np.isfinite(layer.spectral) and layer.spectral > 0 for layer in measures.layers)
    assert np.isfinite(measures.path_norm) and np.isfinite(measures.parameter_norm)


@pytest.mark.parametrize("name", list(TINY))
def test_the_rademacher_analysis_runs_and_its_ball_estimates_grow_with_the_radius(name):
    spec = TINY[name]
    data = noise_dataset()
    model = build_model(spec, seed=0)
    run = RademacherSpec(
        draws=2, relative_radii=[0.001, 0.1], ascent_steps=3, training=FAST, sharpness=False, ntk_examples=16
    )
    result = run_rademacher(spec, model.state_dict(), data, run, 0, torch.device("cpu"))
    small, large = (point.estimate.mean for point in result.local)
    assert small <= large  # nested balls: the ascent's best in the larger one is at least as high
    assert -1 <= result.global_estimate.mean <= 1 and result.ntk.random_labels > 0


@pytest.mark.parametrize("name", list(TINY))
def test_the_randomization_test_trains_each_family_under_the_engines_cpu_choice(name):
    spec = TINY[name]
    conditions = [Condition(kind=ConditionKind.RANDOM_LABELS), Condition(kind=ConditionKind.RANDOM_PIXELS)]
    run = RandomizationSpec(conditions=conditions, seeds_per_condition=2, training=FAST)
    result = run_randomization_test(spec, noise_dataset(), run, 0, torch.device("cpu"))
    expected = "vmap" if name == "vit" else "grouped"  # all small enough to stack; the ViT does not fold
    assert result.engine_strategy == choose_strategy(spec, torch.device("cpu"), 2) == expected
    trials = [t for c in result.conditions for t in c.trials]
    assert len(trials) == 4
    assert all(t.outcome.steps_run == 8 and np.isfinite(t.outcome.train_loss) for t in trials)
    assert len({t.outcome.train_loss for t in trials}) == 4  # four different trainings


@pytest.mark.parametrize("name", list(TINY))
def test_each_family_memorises_a_few_random_labels(name):
    spec = TINY[name]
    training = TrainingSpec(learning_rate=0.05, lr_decay_per_epoch=1.0, batch_size=8, max_epochs=40)
    run = MemorizationSpec(min_subset_size=4, max_subset_size=8, bisection_steps=0, training=training)
    result = run_memorization(spec, noise_dataset(32), run, 0, torch.device("cpu"))
    assert result.points[0].size == 4 and result.budget_steps == 160
    assert result.largest_fitted_size >= 4  # thousands of parameters fit 4 random labels in 160 steps
    assert result.parameter_count == count_parameters(build_model(spec))


ONE_THREAD_TRAINING = """
import torch
from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.strategy import EngineOptions, train_trials
from effcap.capacity.models import parse_architecture
from effcap.capacity.specs import TrainingSpec
torch.set_num_threads(1)
x = torch.randn(64, 1, 8, 8)
shared, trial = SharedData(x, x[:8], torch.zeros(8, dtype=torch.long)), TrialInputs(0, torch.randint(0, 10, (64,)))
one_epoch = TrainingSpec(batch_size=32, max_epochs=1)
for family in ({family}):
    architecture = parse_architecture(dict(family, input_shape=[1, 8, 8], num_classes=10))
    for strategy in ("sequential", "grouped"):  # one trial: a plain channels-last model, and a fold of K = 1
        train_trials(architecture, shared, [trial], one_epoch, options=EngineOptions(strategy))
print("trained")
"""


def test_narrow_projection_shortcuts_train_channels_last_on_one_thread():
    """torch 2.13's CPU backward of a channels-last 1x1 stride-2 conv with under 8 input channels segfaults on
    one thread; the shortcuts subsample, then run a 1x1 conv at stride 1 (capacity/pointwise_conv.subsample). In a
    child process, so that a crash fails this test rather than the whole run."""
    families = '{"family": "resnet", "width": 4}, {"family": "wide_resnet", "depth": 10, "stage_widths": [4, 6, 8]}'
    code = ONE_THREAD_TRAINING.format(family=families)
    one_thread = os.environ | {"OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", code], env=one_thread, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0 and "trained" in child.stdout, child.stderr[-2000:]
