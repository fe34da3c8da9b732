"""Jiang et al. (2020)'s measures against closed forms and brute force on tiny networks (issue 18)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm as gaussian
from torch import nn
from torch.nn import functional as F

from effcap.capacity.engine.trainer import evaluate
from effcap.capacity.measures.flatness import (
    MAGNITUDE_EPSILON,
    largest_tolerated_scale,
    noise_scale,
    pac_bayes_flatness,
    sharpness_flatness,
    stacked_errors,
)
from effcap.capacity.measures.generalization_measures import generalization_measures, init_distances
from effcap.capacity.measures.norms import norm_measures
from effcap.capacity.measures.steps_to_loss import steps_to_loss
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.seeding import data_order_seed
from effcap.capacity.specs import TrainingSpec


def linear_problem(n: int, d: int = 5, seed: int = 0) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """A bias-free two-class linear model that classifies its n examples correctly (the labels are its own)."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Linear(d, 2, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, d, generator=generator, dtype=torch.float64))
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return model, x, model(x).argmax(dim=1)


def expected_error(model: nn.Linear, x: torch.Tensor, y: torch.Tensor, sigma: float, magnitude: bool) -> float:
    """E_u err(w + u): the logit gap moves by (u_y − u_other)·x ~ N(0, Σ_j (var_yj + var_oj) x_j²)."""
    w = model.weight.detach()
    variance = sigma**2 * w**2 + MAGNITUDE_EPSILON**2 if magnitude else torch.full_like(w, sigma**2)
    logits = model(x).detach()
    gap = logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, 1 - y[:, None]).squeeze(1)
    spread = torch.sqrt((x**2 * variance.sum(dim=0)).sum(dim=1))
    return float(torch.from_numpy(gaussian.cdf((-gap / spread).numpy())).mean())


def test_bisection_is_monotone_in_the_threshold_even_for_a_non_monotone_increase():
    def wiggly(scale: float) -> float:
        return scale + 0.3 * math.sin(40 * scale)

    found = [largest_tolerated_scale(wiggly, t, 2.0, 15)[0] for t in (0.05, 0.1, 0.2, 0.4, 0.8)]
    assert found == sorted(found) and found[0] < found[-1]
    scale, at_scale, capped = largest_tolerated_scale(wiggly, 0.4, 2.0, 15)
    assert at_scale <= 0.4 and wiggly(scale + 2.0 / 2**15) > 0.4 and not capped


@pytest.mark.parametrize("magnitude", [False, True])
def test_pac_bayes_sigma_of_a_linear_model_meets_the_closed_form_expected_error(magnitude: bool):
    model, x, y = linear_problem(40)
    noise = "magnitude" if magnitude else "isotropic"
    found = pac_bayes_flatness(model, x, y, noise=noise, samples=2000, steps=12, upper=8.0, seed=3)
    exact, _, _ = largest_tolerated_scale(lambda s: expected_error(model, x, y, s, magnitude), 0.1, 8.0, 12)
    # The Monte-Carlo mean of 2,000 networks is within ~0.01 of the expectation: σ' lands where it is ≈ 0.1.
    assert expected_error(model, x, y, found.scale, magnitude) == pytest.approx(0.1, abs=0.02)
    assert found.scale == pytest.approx(exact, rel=0.1)
    assert found.flatness == pytest.approx(1 / found.scale**2)


def test_the_monte_carlo_error_of_perturbed_networks_matches_the_closed_form():
    model, x, y = linear_problem(30, seed=1)
    weight = model.weight.detach()
    for magnitude in (False, True):
        draws = torch.randn((4000, *weight.shape), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        scale = noise_scale(weight, 0.7, "magnitude" if magnitude else "isotropic")
        errors = stacked_errors(model, {"weight": weight + scale * draws}, x, y)
        assert float(errors.mean()) == pytest.approx(expected_error(model, x, y, 0.7, magnitude), abs=0.015)


def test_magnitude_aware_noise_has_the_standard_deviation_of_eq_55():
    weight = torch.tensor([0.0, 0.5, -2.0], dtype=torch.float64)
    scale = noise_scale(weight, 0.1, "magnitude")
    assert torch.allclose(scale, torch.sqrt(0.01 * weight**2 + MAGNITUDE_EPSILON**2))
    assert noise_scale(weight, 0.1, "isotropic") == 0.1


@pytest.mark.parametrize("magnitude", [False, True])
def test_sharpness_alpha_of_a_linear_model_is_where_the_worst_box_corner_flips_the_example(magnitude: bool):
    model, x, y = linear_problem(1, seed=2)
    w = model.weight.detach()
    logits = model(x).detach()[0]
    gap = float(logits[y[0]] - logits[1 - y[0]])
    l1 = x[0].abs()
    # The worst u moves the gap by Σ_j (h_yj + h_oj)|x_j| with h the box's half-widths (α, or α|w| + ε).
    exact = (
        gap / float(2 * l1.sum())
        if not magnitude
        else (gap - 2 * MAGNITUDE_EPSILON * float(l1.sum())) / float((w.abs().sum(dim=0) * l1).sum())
    )
    found = sharpness_flatness(model, x, y, noise="magnitude" if magnitude else "isotropic", upper=8.0, seed=4)
    assert found.scale == pytest.approx(exact, abs=8.0 / 2**15 + 1e-12)
    assert found.error_increase == 0.0


@pytest.mark.parametrize("measure", [pac_bayes_flatness, sharpness_flatness])
def test_flatness_is_monotone_in_the_threshold_and_seeded(measure):
    torch.manual_seed(0)
    spec = parse_architecture({"family": "mlp", "input_shape": [6], "hidden_sizes": [8], "num_classes": 3})
    model = build_model(spec, seed=0)
    x = torch.randn(60, 6, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(dim=1).detach()
    scales = [measure(model, x, y, threshold=t, steps=10, seed=7).scale for t in (0.05, 0.1, 0.2, 0.4)]
    assert scales == sorted(scales) and scales[0] < scales[-1]
    assert measure(model, x, y, threshold=0.1, steps=10, seed=7) == measure(
        model, x, y, threshold=0.1, steps=10, seed=7
    )


def test_path_norm_measures_equal_brute_force_enumeration_of_paths():
    spec = parse_architecture({"family": "mlp", "input_shape": [3], "hidden_sizes": [4], "num_classes": 2})
    model = build_model(spec, seed=1)
    w1, b1, w2, b2 = (p.detach().double() for p in model.parameters())
    total = sum(b2[k] ** 2 for k in range(2))
    total += sum(b1[i] ** 2 * w2[k, i] ** 2 for k in range(2) for i in range(4))
    total += sum(w1[i, j] ** 2 * w2[k, i] ** 2 for k in range(2) for i in range(4) for j in range(3))
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    norms = norm_measures(model, (3,), x, model(x).argmax(dim=1))
    measures = {m.name: m for m in generalization_measures(norms, 0.0, {}, None, None)}
    assert measures["path.norm"].value == pytest.approx(float(total), rel=1e-10)
    assert measures["path.norm.over.margin"].value == pytest.approx(float(total) / norms.margin.value**2, rel=1e-10)
    assert measures["fro.dist"].value is None and "initial checkpoint" in measures["fro.dist"].note


def test_distances_from_init_are_squared_weight_norms_and_dense_operator_norms():
    spec = parse_architecture({"family": "small_cnn", "input_shape": [1, 6, 6], "num_classes": 3, "channels": [2]})
    model, initial = build_model(spec, seed=0), build_model(spec, seed=1)
    distances = init_distances(model, initial, (1, 6, 6))
    pairs = [(a, b) for a, b in zip(model.modules(), initial.modules()) if isinstance(a, (nn.Conv2d, nn.Linear))]
    expected = sum(float(((a.weight.detach().double() - b.weight.detach().double()) ** 2).sum()) for a, b in pairs)
    assert distances.frobenius_squared == pytest.approx(expected, rel=1e-6)
    conv, conv_init = pairs[0]
    difference = (conv.weight - conv_init.weight).detach().double()

    def apply(v: torch.Tensor) -> torch.Tensor:
        return F.conv2d(v.reshape(1, 1, 6, 6), difference, stride=conv.stride, padding=conv.padding).reshape(-1)

    dense = torch.autograd.functional.jacobian(apply, torch.zeros(36, dtype=torch.float64))
    spectral = float(torch.linalg.matrix_norm(dense, ord=2)) ** 2
    spectral += sum(
        float(torch.linalg.matrix_norm((a.weight - b.weight).detach().double(), ord=2)) ** 2 for a, b in pairs[1:]
    )
    assert distances.spectral_squared == pytest.approx(spectral, rel=1e-6)


def hand_loop_steps(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, training: TrainingSpec, seed: int, threshold: float
) -> int | None:
    """Every step, then the full loss: the definition, written out."""
    order_rng = torch.Generator().manual_seed(data_order_seed(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=training.learning_rate, momentum=training.momentum)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=training.lr_decay_per_epoch)
    step = 0
    for _ in range(training.max_epochs):
        order = torch.randperm(len(x), generator=order_rng)
        for start in range(0, len(x), training.batch_size):
            batch = order[start : start + training.batch_size]
            model.train()
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
            step += 1
            if evaluate(model, x, y)[0] <= threshold:
                return step
        schedule.step()
    return None


@pytest.mark.parametrize("threshold", [0.5, 0.1])
def test_steps_to_cross_entropy_equal_a_hand_loop_with_the_same_seed(threshold: float):
    spec = parse_architecture({"family": "mlp", "input_shape": [4], "hidden_sizes": [16], "num_classes": 2})
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] + x[:, 1] > 0).long()
    training = TrainingSpec(learning_rate=0.1, batch_size=16, max_epochs=60)
    expected = hand_loop_steps(build_model(spec, seed=3), x, y, training, 11, threshold)
    found = steps_to_loss(build_model(spec, seed=3), x, y, training, 11, threshold=threshold)
    assert expected is not None and found.steps == expected


def test_steps_to_cross_entropy_say_when_the_budget_runs_out():
    spec = parse_architecture({"family": "mlp", "input_shape": [4], "hidden_sizes": [4], "num_classes": 2})
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(1))  # random labels: not fitted in 2 epochs
    found = steps_to_loss(build_model(spec, seed=0), x, y, TrainingSpec(max_epochs=2, batch_size=10), 0, threshold=0.01)
    assert found.steps is None and found.steps_run == 8
    [measure] = [
        m
        for m in generalization_measures(norm_measures(build_model(spec, seed=0), (4,), x, y), 0.0, {}, found, None)
        if m.name.startswith("steps")
    ]
    assert measure.value is None and "not reached in 8 steps" in measure.note


def test_the_rademacher_analysis_reports_the_measures_in_every_format():
    from rich.console import Console

    from effcap.capacity.analyses.rademacher import run_rademacher
    from effcap.capacity.data.datasets import Dataset
    from effcap.capacity.specs import RademacherSpec
    from effcap.clients.html_report import report_html
    from effcap.clients.markdown_report import report_markdown
    from effcap.clients.render import print_report, report_json
    from effcap.protos.v1 import report_pb2
    from effcap.service.codec import rademacher_to_proto

    spec = parse_architecture({"family": "mlp", "input_shape": [4], "hidden_sizes": [8], "num_classes": 2})
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    y = (x[:, 0] > 0).long()
    data = Dataset("toy", x.numpy(), y.numpy(), x.numpy(), y.numpy(), num_classes=2)
    model = build_model(spec, seed=0)
    training = TrainingSpec(learning_rate=0.1, batch_size=16, max_epochs=30)
    rademacher = RademacherSpec(
        draws=2,
        fit_signs=False,
        relative_radii=[0.01],
        ascent_steps=2,
        sharpness=False,
        ntk_examples=0,
        training=training,
    )
    result = run_rademacher(spec, model.state_dict(), data, rademacher, 0, torch.device("cpu"))
    names = [m.name for m in result.generalization_measures]
    assert names[:5] == ["fro.dist", "dist.spec.init", "param.norm", "path.norm.over.margin", "path.norm"]
    assert {"pacbayes.flatness", "sharpness.flatness", "pacbayes.mag.flatness", "sharpness.mag.flatness"} <= set(names)
    again = run_rademacher(spec, model.state_dict(), data, rademacher, 0, torch.device("cpu"))
    assert again.generalization_measures == result.generalization_measures  # seeded
    report = report_pb2.AuditReport()
    report.rademacher.CopyFrom(rademacher_to_proto(result))
    [steps] = [m for m in report.rademacher.generalization_measures if m.name == "steps.to.ce.0.1"]
    assert steps.HasField("value") and steps.value > 0
    console = Console(record=True, width=250)
    print_report(report, console)
    for text in (report_markdown(report), report_html(report), console.export_text(), report_json(report)):
        assert "pacbayes.mag.flatness" in text and "eq. 61" in text and "needs the initial checkpoint" in text
