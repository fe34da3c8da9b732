"""The stacked local ascents (every (radius, draw) trial in one vmapped call, examples in blocks) against one
plain autograd ascent per trial: the same arithmetic, so the same increments up to float rounding."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from effcap.capacity.measures import local_ascent
from effcap.capacity.models import build_model, parse_architecture


def _sequential(model: torch.nn.Module, x, u, sigma, limit, steps: int) -> float:
    """One trial's projected gradient ascent, written out from its definition with torch.autograd."""
    start = {name: p.detach() for name, p in model.named_parameters()}
    offset = {name: torch.zeros_like(p) for name, p in start.items()}
    per_tensor = limit.dim() == 1
    step = 2.0 * float(limit.max()) / steps
    values = []
    for iteration in range(steps + 1):
        params = {name: (start[name] + offset[name]).requires_grad_() for name in start}
        value = (sigma * (functional_call(model, params, (x,)) @ u)).mean()
        grads = dict(zip(params, torch.autograd.grad(value, list(params.values()))))
        values.append(float(value.detach()))
        if iteration == steps:
            break
        norm = float(torch.sqrt(sum((g**2).sum() for g in grads.values())))
        offset = {name: o + (step / norm if norm > 0 else 0.0) * grads[name] for name, o in offset.items()}
        if per_tensor:
            offset = {
                name: o * min(1.0, float(limit[k]) / float(o.norm())) if float(o.norm()) > 0 else o
                for k, (name, o) in enumerate(offset.items())
            }
        else:
            length = float(torch.sqrt(sum((o**2).sum() for o in offset.values())))
            offset = {name: o * min(1.0, float(limit) / length) for name, o in offset.items()}
    return max(values) - values[0]


@pytest.mark.parametrize("per_tensor", [False, True])
def test_stacked_ascents_equal_one_autograd_ascent_per_trial(monkeypatch, per_tensor):
    monkeypatch.setattr(local_ascent, "EXAMPLES_PER_CALL", 7)  # 20 examples: blocks of 7, 7 and 6
    n = 20
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((n, 5)))
    spec = parse_architecture({"family": "mlp", "input_shape": [5], "hidden_sizes": [6, 4], "num_classes": 3})
    model = build_model(spec, seed=1).double().eval()
    u = torch.tensor([0.6, 0.0, -0.8], dtype=torch.float64)
    sigmas = torch.from_numpy(np.random.default_rng(2).choice([-1.0, 1.0], size=(6, n)))
    radii = torch.tensor([0.01, 0.01, 0.01, 1.0, 1.0, 1.0], dtype=torch.float64)
    limits = radii
    if per_tensor:
        norms = torch.stack([p.detach().norm() for p in model.parameters()])
        limits = radii[:, None] * norms[None, :]
    stacked = local_ascent.ascend_all(model, x, u, sigmas, limits, steps=15)
    sequential = [_sequential(model, x, u, sigmas[t], limits[t], steps=15) for t in range(len(sigmas))]
    assert stacked.tolist() == pytest.approx(sequential, rel=1e-10, abs=1e-13)
    assert min(sequential) > 0  # every ascent moved: the comparison is not between zeros
