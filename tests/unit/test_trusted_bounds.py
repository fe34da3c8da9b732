"""Issue 18: local R̂ as an increment over w₀, fully paid PAC-Bayes values, and conv norms of the linear map."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from effcap.capacity.measures.rademacher import local_rademacher, sign_draws
from effcap.capacity.models import build_model, parse_architecture


def test_local_rademacher_at_a_small_radius_is_the_first_order_increment_over_w0():
    """For small r the sup over ‖w − w₀‖ ≤ r of (1/n)Σσ_i f_w(x_i) − (1/n)Σσ_i f_{w₀}(x_i) is r‖∇_w‖ (ReLU nets
    are piecewise linear in w, so to first order exactly): the w₀ term, sd ~1/√n, no longer swamps it."""
    n = 64
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((n, 6)))
    spec = parse_architecture({"family": "mlp", "input_shape": [6], "hidden_sizes": [16], "num_classes": 1})
    model = build_model(spec, seed=0).double().eval()
    sigmas = sign_draws(n, 4, 2)
    radius = 1e-5
    params = {name: p.detach() for name, p in model.named_parameters()}
    exact = []
    for s in sigmas:
        grads = torch.func.grad(lambda p, s=s: (s * functional_call(model, p, (x,))[:, 0]).mean())(params)
        exact.append(radius * float(torch.sqrt(sum((g**2).sum() for g in grads.values()))))
    estimate = local_rademacher(model, x, radius, sigmas, steps=10)
    assert estimate.mean == pytest.approx(float(np.mean(exact)), rel=1e-3)
    assert 0 <= estimate.ci_low <= estimate.mean <= estimate.ci_high


def test_a_local_interval_is_cut_at_zero_where_the_draws_spread_widely():
    """Two draws far apart put the t-interval's lower end below 0; R̂ ≥ 0, so the reported one starts at 0."""
    from effcap.capacity.measures.rademacher import _at_least_zero, t_interval

    wide = t_interval([0.001, 0.03])
    assert wide.ci_low < 0
    cut = _at_least_zero(wide)
    assert (cut.mean, cut.ci_low, cut.ci_high) == (wide.mean, 0.0, wide.ci_high)


def _kl_upper(q: float, budget: float) -> float:
    """An independent kl inverse: the root of kl(q ‖ p) = budget on (q, 1), by Brent's method."""
    from scipy.optimize import brentq

    def kl(p: float) -> float:
        return (q * math.log(q / p) if q > 0 else 0.0) + (1 - q) * math.log((1 - q) / (1 - p)) - budget

    return 1.0 if kl(1 - 1e-15) < 0 else brentq(kl, q + 1e-300 if q == 0 else q, 1 - 1e-15, xtol=1e-14)


@pytest.mark.parametrize(
    "error, samples, sigma, norm2, grid, n", [(0.119, 10, 0.05, 40.0, 32767, 1000), (0.0, 100, 0.3, 5.0, 7, 50_000)]
)
def test_gaussian_pac_bayes_pays_the_search_and_the_sampling(error, samples, sigma, norm2, grid, n):
    from effcap.capacity.measures.pac_bayes import gaussian_pac_bayes

    delta = 0.05
    b = gaussian_pac_bayes(error, samples, sigma, norm2, grid, n, delta)
    error_upper = _kl_upper(error, math.log(2 / (delta / 2)) / samples)  # Langford & Caruana at δ/2
    budget = norm2 / (2 * sigma**2) + math.log(2 * math.sqrt(n) / (delta / 2 / grid))  # union over the σ grid
    assert b.error_upper == pytest.approx(error_upper, abs=1e-9)
    assert b.kl == pytest.approx(_kl_upper(error_upper, budget / n), abs=1e-9)
    assert b.pinsker == pytest.approx(error_upper + math.sqrt(budget / (2 * n)), rel=1e-12)
    # Paying costs: more than the unpaid McAllester value at the sampled error, with δ undivided.
    unpaid = error + math.sqrt((norm2 / (2 * sigma**2) + math.log(2 * math.sqrt(n) / delta)) / (2 * n))
    assert b.pinsker > unpaid and b.kl <= b.pinsker


def test_every_pac_bayes_value_of_the_analysis_equals_its_recomputation_with_all_terms_paid():
    from effcap.capacity.analyses.rademacher import run_rademacher
    from effcap.capacity.data.datasets import Dataset
    from effcap.capacity.engine.trainer import DeviceData, train_trial
    from effcap.capacity.measures.layers import fold_batchnorm
    from effcap.capacity.measures.sharpness import perturbed_error
    from effcap.capacity.seeding import derive_seed
    from effcap.capacity.specs import RademacherSpec, TrainingSpec

    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    data = Dataset("halfspace", x, y, x[:50], y[:50], num_classes=2)
    spec = parse_architecture({"family": "mlp", "input_shape": [5], "hidden_sizes": [16], "num_classes": 2})
    model = build_model(spec, seed=0)
    training = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, batch_size=32, max_epochs=20)
    train_trial(model, DeviceData(*(torch.from_numpy(a) for a in (x, y, x[:50], y[:50]))), training, seed=0)
    rademacher = RademacherSpec(draws=2, fit_signs=False, relative_radii=[0.01], ascent_steps=2, ntk_examples=0)
    result = run_rademacher(spec, model.state_dict(), data, rademacher, 7, torch.device("cpu"))
    paid = [b for b in result.bounds if b.fully_paid]
    assert [b.name for b in paid] == ["pac_bayes_sharpness"]
    assert all(
        not b.fully_paid for b in result.bounds if b.name != "pac_bayes_sharpness"
    )  # omitted constants, unpaid γ
    folded = fold_batchnorm(model)
    sigma, n, delta = result.sharpness.sigma, 300, rademacher.delta
    assert result.sharpness.grid_size == 2**15 - 1  # the dyadic midpoints the 15-step bisection can return
    sampled = perturbed_error(
        folded, torch.from_numpy(x), torch.from_numpy(y), sigma, 100, derive_seed(7, "pac-bayes-samples")
    )
    error_upper = _kl_upper(sampled, math.log(4 / delta) / 100)
    norm2 = float(sum((p.detach().double() ** 2).sum() for p in folded.parameters()))
    budget = norm2 / (2 * sigma**2) + math.log(2 * math.sqrt(n) * 2 * (2**15 - 1) / delta)
    assert paid[0].value == pytest.approx(_kl_upper(error_upper, budget / n), abs=1e-9)
    assert "posterior Q" in paid[0].bounds_on


def test_an_entropy_code_pays_for_its_table():
    from effcap.capacity.measures.compression_bounds import coder_table_bits, entropy_bits, entropy_code_bits

    counts = [5, 0, 5]  # three symbols in the alphabet's span, ten in the sequence: each count in log2(11) bits
    assert coder_table_bits(counts) == pytest.approx(64 + 3 * math.log2(11))
    assert entropy_code_bits(counts) == pytest.approx(coder_table_bits(counts) + entropy_bits(counts))
    assert entropy_code_bits([]) == 0


def _dense(layer: torch.nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """The layer's linear map as a matrix: its response (bias removed) to every basis vector."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    with torch.no_grad():
        out = layer(basis) - (layer(torch.zeros(1, *shape, dtype=torch.float64)) if layer.bias is not None else 0)
    return out.reshape(n, -1).T


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: torch.nn.Conv2d(3, 4, 3, stride=1, padding=1), (3, 5, 5)),
        (lambda: torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 6, 6)),
        (lambda: torch.nn.Conv2d(3, 4, 3, stride=2, padding=2), (3, 5, 5)),
        (lambda: torch.nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)), (3, 7, 6)),
        (lambda: torch.nn.Conv2d(4, 6, 3, padding=1, groups=2), (4, 5, 5)),
        (lambda: torch.nn.Conv2d(3, 4, 3, padding="same"), (3, 4, 4)),
        (lambda: torch.nn.Conv1d(2, 3, 5, stride=3, padding=2), (2, 11)),
        (lambda: torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), (3, 4, 4)),
        (lambda: torch.nn.Linear(7, 5), (7,)),
    ],
)
def test_frobenius_norm_of_a_layer_is_that_of_its_dense_matrix(make, shape):
    from effcap.capacity.measures.operator_frobenius import operator_frobenius_norm
    from effcap.capacity.measures.spectral import operator_spectral_norm

    torch.manual_seed(len(shape) * 7 + shape[-1])
    layer = make().double()
    dense = _dense(layer, shape)
    assert operator_frobenius_norm(layer, shape) == pytest.approx(float(dense.norm()), rel=1e-12)
    # One matrix's stable rank ‖A‖²_F/‖A‖²₂ is at least 1 (the kernel norm over the operator norm can be < 1).
    assert operator_frobenius_norm(layer, shape) >= operator_spectral_norm(layer, shape) * (1 - 1e-6)


def test_a_resnets_frobenius_terms_are_its_linear_maps():
    from effcap.capacity.measures.norms import norm_measures

    spec = parse_architecture({"family": "resnet20", "input_shape": [3, 8, 8], "num_classes": 10})
    model = build_model(spec, seed=0)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    measures = norm_measures(model, (3, 8, 8), x, torch.zeros(4, dtype=torch.long))
    convs = [layer for layer in measures.layers if layer.kind == "Conv2d"]
    assert all(layer.frobenius > layer.frobenius_kernel for layer in convs)  # every conv has ≥ 2 output positions
    assert all(layer.frobenius**2 / layer.spectral**2 >= 1 - 1e-6 for layer in measures.layers)
    assert measures.frobenius_product == pytest.approx(math.prod(layer.frobenius for layer in measures.layers))


def test_chain_bounds_say_where_they_do_not_hold_and_bartletts_width_counts_the_input():
    from effcap.capacity.measures.bounds import norm_bounds
    from effcap.capacity.measures.norms import norm_measures
    from effcap.capacity.measures.topology import chain_caveat

    assert chain_caveat(parse_architecture({"family": "mlp", "input_shape": [4], "num_classes": 2})) is None
    resnet = chain_caveat(parse_architecture({"family": "resnet20", "input_shape": [3, 8, 8], "num_classes": 10}))
    inception = chain_caveat(
        parse_architecture({"family": "inception_small", "input_shape": [3, 16, 16], "num_classes": 10})
    )
    assert "skip connections" in resnet and "concatenated" in inception
    spec = parse_architecture({"family": "mlp", "input_shape": [64], "hidden_sizes": [16], "num_classes": 3})
    model = build_model(spec, seed=0)
    x = torch.randn(30, 64, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)  # every example classified right: the margin is positive
    bounds = {b.name: b for b in norm_bounds(norm_measures(model, (64,), x, y), 3, 0.05, resnet)}
    assert "W = 64 (the widest layer, input included)" in bounds["bartlett_spectral"].inputs
    assert all(b.inputs.startswith(resnet) and not b.fully_paid for b in bounds.values())


def test_conv_spectral_norm_is_exact_when_the_top_two_singular_values_are_close():
    """A 1×1 conv is M ⊗ I over positions: its singular values are M's. With σ₁ = 1 and σ₂ = 0.9995, 500 power
    iterations leave a 5e-4 gap; the Lanczos iteration stops at its tolerance."""
    from effcap.capacity.measures.spectral import operator_spectral_norm

    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    v, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    matrix = u[:, :3] @ np.diag([1.0, 0.9995, 0.5]) @ v.T
    conv = torch.nn.Conv2d(3, 4, 1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(matrix).reshape(4, 3, 1, 1))
    assert operator_spectral_norm(conv, (3, 6, 6)) == pytest.approx(1.0, rel=1e-8)
    assert operator_spectral_norm(conv.float(), (3, 6, 6)) == pytest.approx(1.0, rel=1e-6)  # float32 weights too


def _compressibility_report(test_accuracy: float, train_accuracy: float):
    from effcap.protos.v1 import report_pb2

    return report_pb2.CompressibilityReport(
        eval_split="test",
        baseline_accuracy=test_accuracy,
        baseline_train_accuracy=train_accuracy,
        tolerance=0.01,
        methods=[
            report_pb2.MethodCompressibility(
                method="magnitude_global", sparsity=0.999, compression_ratio=900.0, train_sparsity=0.5
            )
        ],
        points=[report_pb2.CompressionPoint(method="magnitude_global", level=0.5, compression_ratio=2.0)],
    )


@pytest.mark.parametrize(
    "test_accuracy, train_accuracy, split, sparsity, phrase",
    [
        (0.95, 1.0, "test", 0.999, None),  # learnt: the test split's headline
        (0.11, 1.0, "train", 0.5, "measured on the train split"),  # memorised random labels: at chance on test
        (0.10, 0.12, "", None, "no compressibility headline"),  # at chance everywhere
    ],
)
def test_a_model_at_chance_on_its_test_split_takes_no_compressibility_headline_from_it(
    test_accuracy, train_accuracy, split, sparsity, phrase
):
    from effcap.clients.card import card_lines
    from effcap.protos.v1 import report_pb2
    from effcap.service.compressibility_headline import set_compressibility_headline

    report = report_pb2.AuditReport(compressibility=_compressibility_report(test_accuracy, train_accuracy))
    report.card.chance_accuracy = 0.1
    set_compressibility_headline(report.card, report.compressibility)
    card = report.card
    assert card.compressibility_split == split
    assert (card.compressibility if card.HasField("compressibility") else None) == sparsity
    line = next(line for line in card_lines(report) if line.startswith("Compressibility"))
    assert ("99.9%" in line) == (sparsity == 0.999)
    if phrase:
        assert phrase in card.compressibility_note and phrase in line
    else:
        assert card.compressibility_note == "" and "test accuracy." in line


def test_the_global_estimates_training_budget_is_in_the_text_and_markdown_reports():
    from rich.console import Console

    from effcap.clients.markdown_report import report_markdown
    from effcap.clients.render import rademacher_tables
    from effcap.protos.v1 import report_pb2

    budget = "each of 8 draws trains a fresh two-logit network on 1000 examples for up to 3 epochs"
    section = report_pb2.RademacherReport(examples=1000, confidence=0.95, global_training=budget)
    section.global_estimate.CopyFrom(report_pb2.RademacherEstimate(mean=0.4, ci_low=0.3, ci_high=0.5, draws=8))
    assert budget in report_markdown(report_pb2.AuditReport(rademacher=section))
    console = Console(record=True, width=400)
    for table in rademacher_tables(section):
        console.print(table)
    assert budget in console.export_text()


def _jacobian_gram(model: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """J Jᵀ from one autograd Jacobian row per example, f = u·logits with ntk_gram's u."""
    u = torch.randn(model(x[:1]).shape[1], generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    u /= u.norm()
    params = dict(model.named_parameters())
    rows = []
    for example in x:
        grads = torch.autograd.grad(model(example[None])[0] @ u, list(params.values()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    j = torch.stack(rows)
    return j @ j.T


def test_the_ntk_gram_built_block_pair_by_block_pair_equals_j_jt():
    """With blocks far smaller than the Jacobian, every tensor goes through the block-pair path: still J Jᵀ; and
    the fully connected layers' factored shares (the default) give the same Gram."""
    from effcap.capacity.measures import ntk

    spec = parse_architecture({"family": "mlp", "input_shape": [5], "hidden_sizes": [7], "num_classes": 3})
    model = build_model(spec, seed=0).double()
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((11, 5)))
    factored = ntk.ntk_gram(model, x)
    whole = ntk.ntk_gram(model, x, factorise=False)
    blocked = ntk.ntk_gram(model, x, block_bytes=8 * 7 * 3, factorise=False)  # 3 rows of the 7-wide bias
    expected = _jacobian_gram(model, x)
    for gram in (factored, whole, blocked):
        torch.testing.assert_close(gram, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "architecture",
    [
        {"family": "lenet5", "input_shape": [1, 12, 12], "num_classes": 4, "conv_channels": [3, 4], "fc_sizes": [6, 5]},
        {"family": "vit", "input_shape": [3, 8, 8], "num_classes": 3, "patch_size": 4, "dim": 4, "depth": 1, "heads": 2,
         "mlp_ratio": 2.0},
    ],
    ids=["conv-then-linear", "linear-per-token"],
)
def test_the_factored_ntk_shares_leave_what_does_not_factorise_to_the_rows(architecture):
    """Convolutions beside Linear layers, and a ViT's Linear layers applied to every token (whose Jacobian is a
    sum over tokens, not one outer product): the mixed Gram is still J Jᵀ."""
    from effcap.capacity.measures import ntk
    from effcap.capacity.measures.ntk_factored import factored_gram

    model = build_model(parse_architecture(architecture), seed=0).double().eval()
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((6, *architecture["input_shape"])))
    torch.testing.assert_close(ntk.ntk_gram(model, x), _jacobian_gram(model, x), rtol=1e-10, atol=1e-12)
    _, covered = factored_gram(model, x, lambda logits: logits.sum(dim=1))
    heads = {f"{name}.{p}" for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) for p in ("weight", "bias")}
    # LeNet's three fully connected layers factorise; of the ViT's Linear layers only the head on the class token
    # does (its blocks' layers see every token, the attention's output projection is not called as a module).
    expected = 6 if architecture["family"] == "lenet5" else 2
    assert covered <= heads and len(covered) == expected, covered


def test_a_network_that_mixes_the_batch_axis_is_left_to_the_rows():
    """Row i of a layer's input is example i's only if examples are independent in a batch: a network that flips
    the batch before its Linear layers (as an imported graph could) must not be factored, and its Gram is J Jᵀ."""
    from effcap.capacity.measures import ntk
    from effcap.capacity.measures.ntk_factored import factored_gram

    class Flipped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = torch.nn.Linear(4, 5), torch.nn.Linear(5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.second(torch.tanh(self.first(x.flip(0))))  # row i of the logits is example n-1-i's

    torch.manual_seed(0)
    model = Flipped().double().eval()
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((6, 4)))
    assert factored_gram(model, x, lambda logits: logits.sum(dim=1))[1] == set()
    torch.testing.assert_close(ntk.ntk_gram(model, x), _jacobian_gram(model, x), rtol=1e-10, atol=1e-12)


class _TwoLayers(torch.nn.Module):
    """A small network whose first Linear layer breaks one of the factored NTK's conditions in `variant`."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant
        self.first, self.second = torch.nn.Linear(4, 5), torch.nn.Linear(5, 2)
        if variant == "hook rescales the output":
            self.first.register_forward_hook(lambda module, args, output: 3.0 * output)
        if variant == "weight normalised":
            torch.nn.utils.parametrizations.weight_norm(self.first)
        if variant == "weight is a buffer":
            weight = self.first.weight.detach().clone()
            del self.first.weight
            self.first.register_buffer("weight", weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        if self.variant == "output edited in place":
            h.mul_(2.0).tanh_()
        else:
            h = torch.tanh(h)
        if self.variant == "weight also used through F.linear":
            h = h + torch.nn.functional.linear(x, self.first.weight)
        return self.second(h)


@pytest.mark.parametrize(
    "variant",
    ["output edited in place", "hook rescales the output", "weight also used through F.linear", "weight normalised",
     "weight is a buffer"],
)
def test_a_linear_layer_that_breaks_the_factored_conditions_is_left_to_the_rows(variant):
    """Each of these made the factored Gram wrong by 0.2-6x in a review; the first layer must fall back to the
    rows (the second still factors) and the Gram must equal J Jᵀ."""
    from effcap.capacity.measures import ntk
    from effcap.capacity.measures.ntk_factored import factored_gram

    torch.manual_seed(0)
    model = _TwoLayers(variant).double().eval()
    x = torch.from_numpy(np.random.default_rng(6).standard_normal((7, 4)))
    _, covered = factored_gram(model, x, lambda logits: logits.sum(dim=1))
    assert not any(name.startswith("first.") for name in covered) and "second.weight" in covered, covered
    torch.testing.assert_close(ntk.ntk_gram(model, x), _jacobian_gram(model, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["one layer frozen", "all frozen", "inference mode"])
def test_the_ntk_of_frozen_layers_or_under_inference_mode_comes_from_the_rows(case):
    """Autograd cannot differentiate a frozen layer's weights, nor anything under inference mode: the factored path
    must step aside (a review saw it raise where the rows path answers) and the Gram still be J Jᵀ."""
    from effcap.capacity.measures import ntk

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    model = model.double().eval()
    x = torch.from_numpy(np.random.default_rng(11).standard_normal((10, 1, 4, 4)))
    expected = ntk.ntk_gram(model, x, factorise=False)
    if case == "one layer frozen":
        model[1].requires_grad_(False)
    if case == "all frozen":
        model.requires_grad_(False)
    if case == "inference mode":
        with torch.inference_mode():
            gram = ntk.ntk_gram(model, x)
    else:
        gram = ntk.ntk_gram(model, x)
    torch.testing.assert_close(gram, expected, rtol=1e-12, atol=1e-12)


def test_a_bound_that_reads_as_one_is_vacuous():
    from effcap.capacity.measures.bounds import Bound

    # A kl inversion with a large KL term lands a hair under 1 (0.9999999999992777 in a review's run).
    assert Bound("pac_bayes_sharpness", 0.9999999999992777, "", "").vacuous
    assert Bound("b", None, "", "").vacuous and Bound("b", 1.5, "", "").vacuous
    assert not Bound("b", 0.999, "", "").vacuous
