"""Capacity measures against ground truth (DESIGN.md section 8): closed forms and brute force."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from effcap.capacity.analyses.rademacher import run_rademacher
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.trainer import DeviceData, train_trial
from effcap.capacity.measures.bounds import norm_bounds
from effcap.capacity.measures.layers import fold_batchnorm, weight_layers
from effcap.capacity.measures.norms import margin, norm_measures, path_norm
from effcap.capacity.measures.rademacher import local_rademacher, sign_draws, t_interval
from effcap.capacity.measures.spectral import operator_spectral_norm, reshaped_kernel_spectral_norm
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.specs import RademacherSpec, TrainingSpec


@pytest.mark.parametrize("stride, padding, size", [(1, 1, 5), (1, 0, 6), (2, 1, 6), (2, 0, 7), (2, 2, 5)])
def test_conv_spectral_norm_is_the_top_singular_value_of_its_dense_matrix(stride, padding, size):
    torch.manual_seed(stride * 10 + size)
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=padding).double()
    shape = (3, size, size)
    n = math.prod(shape)
    # The dense matrix of the conv: its response to every basis vector.
    dense = torch.nn.functional.conv2d(torch.eye(n, dtype=torch.float64).reshape(n, *shape), conv.weight.detach(), None, stride, padding).reshape(n, -1).T
    exact = float(torch.linalg.matrix_norm(dense, ord=2))
    assert operator_spectral_norm(conv, shape) == pytest.approx(exact, rel=1e-4)
    # The reshaped kernel is a different number (the approximation other tools report).
    assert abs(reshaped_kernel_spectral_norm(conv) - exact) > 1e-3


def test_linear_spectral_norm_is_exact():
    layer = nn.Linear(7, 5).double()
    assert operator_spectral_norm(layer, (7,)) == pytest.approx(float(torch.linalg.svdvals(layer.weight.detach())[0]), rel=1e-12)


def test_path_norm_equals_brute_force_enumeration_of_paths_with_biases():
    torch.manual_seed(0)
    spec = parse_architecture({"family": "mlp", "input_shape": [3], "hidden_sizes": [4, 2], "num_classes": 2})
    model = build_model(spec, seed=1).double()
    w1, b1, w2, b2, w3, b3 = (p.detach() for p in model.parameters())
    total = 0.0
    for k in range(2):
        total += b3[k] ** 2
        for j in range(2):
            total += b2[j] ** 2 * w3[k, j] ** 2
            for i in range(4):
                total += b1[i] ** 2 * w2[j, i] ** 2 * w3[k, j] ** 2
                for x in range(3):
                    total += w1[i, x] ** 2 * w2[j, i] ** 2 * w3[k, j] ** 2
    assert path_norm(model, (3,)) == pytest.approx(math.sqrt(float(total)), rel=1e-12)


@pytest.mark.parametrize(
    "architecture, shape",
    [
        ({"family": "resnet20"}, [3, 16, 16]),
        ({"family": "small_cnn", "channels": [4, 8], "batch_norm": True}, [1, 8, 8]),
        ({"family": "inception_small"}, [3, 16, 16]),
    ],
)
def test_folding_batchnorm_leaves_the_outputs_unchanged(architecture, shape):
    model = build_model(parse_architecture({**architecture, "input_shape": shape, "num_classes": 10}), seed=0)
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial statistics, so folding has work to do
            module.running_mean.uniform_(-1, 1, generator=generator)
            module.running_var.uniform_(0.5, 2, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.uniform_(-0.5, 0.5, generator=generator)
    model.eval()
    folded = fold_batchnorm(model)
    x = torch.randn(4, *shape, generator=generator)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())


def test_layers_are_found_in_forward_order_with_their_real_input_sizes():
    spec = parse_architecture({"family": "resnet20", "input_shape": [3, 16, 16], "num_classes": 10})
    layers = weight_layers(fold_batchnorm(build_model(spec)), (3, 16, 16))
    assert len(layers) == 20  # 19 convs and the head: ResNet-20
    assert layers[0].input_shape == (3, 16, 16) and layers[-1].input_shape == (64,)
    assert layers[7].input_shape == (16, 16, 16) and layers[8].input_shape == (32, 8, 8)  # stride-2 block


@pytest.mark.parametrize("n, d", [(50, 5), (200, 20), (400, 3)])
@pytest.mark.parametrize("radius", [0.3, 1.0, 4.0])
def test_local_rademacher_of_a_linear_model_matches_the_closed_form(n, d, radius):
    """sup over ‖w‖ ≤ r of (1/n) Σ σ_i w·x_i is exactly (r/n)‖Σ σ_i x_i‖₂."""
    x = torch.from_numpy(np.random.default_rng(n + d).standard_normal((n, d)))
    model = build_model(parse_architecture({"family": "mlp", "input_shape": [d], "hidden_sizes": [], "num_classes": 1, "bias": False})).double()
    with torch.no_grad():
        model.head.weight.zero_()
    sigmas = sign_draws(n, 6, seed := 3)
    estimate = local_rademacher(model, x, radius, sigmas, steps=25, seed=seed)
    exact = np.mean([radius / n * float((s[:, None] * x).sum(0).norm()) for s in sigmas])
    assert estimate.mean == pytest.approx(exact, rel=0.02)
    assert estimate.ci_low <= estimate.mean <= estimate.ci_high


def test_t_interval_matches_scipy_closed_form():
    values = [0.2, 0.4, 0.9, 0.5]
    e = t_interval(values)
    half = 3.182446305284263 * np.std(values, ddof=1) / 2  # t_{0.975, 3}
    assert (e.mean, e.ci_low, e.ci_high) == pytest.approx((0.5, 0.5 - half, 0.5 + half))


def test_margin_is_flagged_when_over_ten_percent_are_misclassified():
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3, 2))
        model.bias.zero_()
    x = torch.tensor([[5.0, 0.0]] * 8 + [[0.0, 5.0]] * 2)
    good = margin(model, x, torch.tensor([0] * 8 + [1] * 2))
    assert good.valid and good.misclassified_fraction == 0 and good.value == pytest.approx(5.0)
    bad = margin(model, x, torch.tensor([0] * 7 + [1] + [0] * 2))  # 3 of 10 wrong
    assert not bad.valid and bad.misclassified_fraction == pytest.approx(0.3)
    measures = norm_measures(model, (2,), x, torch.tensor([0] * 7 + [1] + [0] * 2))
    assert all(b.value is None and b.vacuous and "misclassified" in b.inputs for b in norm_bounds(measures, 3, 0.05))


def test_a_memorising_network_has_a_larger_rademacher_complexity_than_small_balls_around_it():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 10)).astype(np.float32)
    y = rng.integers(0, 4, 128)
    data = Dataset("random", x, y, x[:16], y[:16], num_classes=4)
    spec = parse_architecture({"family": "mlp", "input_shape": [10], "hidden_sizes": [256], "num_classes": 4})
    model = build_model(spec, seed=0)
    training = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, batch_size=32, max_epochs=300)
    tensors = DeviceData(*(torch.from_numpy(a) for a in (x, y, x[:16], y[:16])))
    assert train_trial(model, tensors, training, seed=0).fitted  # it memorised the random labels
    radii = [0.001, 0.01, 0.1, 0.5]
    result = run_rademacher(
        spec, model.state_dict(), data, RademacherSpec(draws=4, relative_radii=radii, ascent_steps=30, training=training), 0, torch.device("cpu")
    )
    curve = [p.estimate.mean for p in result.local]
    assert all(a <= b for a, b in itertools.pairwise(curve)), curve  # monotone in r
    # The balls contain w₀ and each draw scores its increment over w₀: never negative, at any radius.
    assert all(p.estimate.mean >= 0 and p.estimate.ci_high >= 0 for p in result.local + result.local_per_layer)
    assert result.global_estimate.mean > 0.9  # the architecture fits random signs
    assert result.global_estimate.mean > curve[0] * 10
    assert result.bounds[0].name == "rademacher_sign_fit" and result.bounds[0].vacuous


def test_ntk_complexity_separates_true_from_random_digits_labels():
    from effcap.capacity.data.datasets import digits
    from effcap.capacity.measures.ntk import ntk_complexity, ntk_gram

    data = digits()
    x, y = torch.from_numpy(data.x_train[:300]), torch.from_numpy(data.y_train[:300])
    spec = parse_architecture({"family": "mlp", "input_shape": [1, 8, 8], "hidden_sizes": [128], "num_classes": 10})
    gram = ntk_gram(build_model(spec, seed=0), x)
    assert gram.shape == (300, 300) and torch.allclose(gram, gram.T)
    random_labels = torch.from_numpy(np.random.default_rng(0).integers(0, 10, 300))
    assert ntk_complexity(gram, random_labels, 10) > 2 * ntk_complexity(gram, y, 10)


def test_ntk_complexity_matches_the_closed_form_for_a_linear_model():
    """For f(x) = w·x the NTK is X Xᵀ, whatever w is."""
    from effcap.capacity.measures.ntk import RIDGE, ntk_complexity, ntk_gram

    x = torch.from_numpy(np.random.default_rng(1).standard_normal((12, 20)))
    model = build_model(parse_architecture({"family": "mlp", "input_shape": [20], "hidden_sizes": [], "num_classes": 1, "bias": False})).double()
    gram = ntk_gram(model, x)
    torch.testing.assert_close(gram, x @ x.T)
    labels = torch.arange(12) % 3
    y = torch.nn.functional.one_hot(labels, 3).double()
    ridge = RIDGE * float(torch.trace(gram)) / 12
    exact = math.sqrt(2 * float(torch.trace(y.T @ torch.linalg.solve(gram + ridge * torch.eye(12, dtype=torch.float64), y))) / 12)
    assert ntk_complexity(gram, labels, 3) == pytest.approx(exact, rel=1e-9)


def test_sharpness_finds_the_noise_scale_of_the_target_accuracy_drop():
    from effcap.capacity.measures.sharpness import sharpness

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((400, 2)).astype(np.float32))
    y = (x[:, 0] > 0).long()
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        model.bias.zero_()
    plain = sharpness(model, x, y, samples=20, seed=0)
    assert 0 < plain.sigma < 2 and plain.forward_passes % 20 == 0
    # An independent simulation with noise of standard deviation σ (not σ², a slip in public code)
    # on all six parameters reproduces the drop the search aimed at.
    noise = np.random.default_rng(5).standard_normal((2000, 6)) * plain.sigma
    w = np.array([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0]) + noise
    xs, labels = x.numpy().astype(np.float64), y.numpy()
    logits0 = xs @ w[:, 0:2].T + w[:, 4][None, :]  # (examples, noise draws)
    logits1 = xs @ w[:, 2:4].T + w[:, 5][None, :]
    simulated_drop = 1.0 - ((logits1 > logits0) == labels[:, None]).mean()
    assert simulated_drop == pytest.approx(0.1, abs=0.03)
    magnitude = sharpness(model, x, y, magnitude_aware=True, samples=20, seed=0)
    assert magnitude.sigma > plain.sigma  # |w| + ε ≤ 1 here, so σ′ must be larger for the same drop


def test_layer_wise_balls_of_a_linear_model_match_the_closed_form():
    """With one tensor the layer-wise ball is ‖w − w₀‖ ≤ r‖w₀‖, so the sup of (1/n)Σσ_i w·x_i is
    (1/n)Σσ_i w₀·x_i + (r‖w₀‖/n)‖Σσ_i x_i‖; the estimate is the increment over w₀, the second term."""
    n, d = 80, 6
    x = torch.from_numpy(np.random.default_rng(7).standard_normal((n, d)))
    model = build_model(parse_architecture({"family": "mlp", "input_shape": [d], "hidden_sizes": [], "num_classes": 1, "bias": False})).double()
    w0 = model.head.weight.detach().clone()
    sigmas = sign_draws(n, 4, 1)
    estimate = local_rademacher(model, x, 0.5, sigmas, steps=25, per_tensor=True)
    exact = np.mean([0.5 * float(w0.norm()) / n * float((s[:, None] * x).sum(0).norm()) for s in sigmas])
    assert estimate.mean == pytest.approx(exact, rel=0.02)


def test_distance_from_init_is_zero_to_itself_and_exact_for_a_linear_layer():
    from effcap.capacity.measures.norms import distance_from_init

    spec = parse_architecture({"family": "small_cnn", "input_shape": [1, 6, 6], "channels": [3], "num_classes": 2})
    a, b = build_model(spec, seed=0), build_model(spec, seed=1)
    zero = distance_from_init(a, a, (1, 6, 6))
    assert zero.frobenius == 0 and zero.spectral == 0
    expected = math.sqrt(sum(float(((p - q) ** 2).sum()) for p, q in zip(a.state_dict().values(), b.state_dict().values())))
    assert distance_from_init(a, b, (1, 6, 6)).frobenius == pytest.approx(expected)
    linear = parse_architecture({"family": "mlp", "input_shape": [4], "hidden_sizes": [], "num_classes": 3})
    c, d = build_model(linear, seed=0), build_model(linear, seed=1)
    diff = (c.head.weight - d.head.weight).detach().double()
    assert distance_from_init(c, d, (4,)).spectral == pytest.approx(float(torch.linalg.svdvals(diff)[0]), rel=1e-6)
