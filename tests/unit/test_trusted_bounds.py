"""Issue 18: local R̂ as an increment over w₀, fully paid PAC-Bayes values, and conv norms of the linear map."""

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
