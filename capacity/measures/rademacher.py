"""Empirical Rademacher complexity, estimated by optimisation.

R̂_S(H) = E_σ sup_{h∈H} (1/n) Σ σ_i h(x_i), σ uniform on {−1, +1}^n, estimated as a mean over draws
with a t-interval. The supremum is found by an optimiser, so every estimate is a lower estimate of
the true sup (the report says so).

- Global: sign classifiers h = sign(f) of the architecture trained (by the engine, like any trial)
  to fit σ; the score is (1/n) Σ σ_i h(x_i) = 2·agreement − 1.
- Local: real-valued f_w = u·logits_w (u a fixed unit vector; u = 1 for one logit) over the ball
  ‖w − w₀‖₂ ≤ r about the checkpoint, by projected gradient ascent. For a linear f about 0 the
  supremum is exactly (r/n)‖Σ σ_i x_i‖₂, which the estimator reproduces (tests check it).
  Each draw's value is the increment sup_w (1/n) Σ σ_i f_w(x_i) − (1/n) Σ σ_i f_{w₀}(x_i): the
  subtracted term is known exactly and has expectation 0, so the mean is the same R̂, but without
  that term's noise (per-draw sd ~0.2 around a trained MLP, which swamped the increment at small
  radii and made estimates negative). Since the ball contains w₀, every draw's increment is ≥ 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import nn
from torch.func import functional_call

from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.strategy import EngineOptions, train_trials
from effcap.capacity.errors import InputError
from effcap.capacity.models import ArchitectureSpec, with_num_classes
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import TrainingSpec

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    mean: float
    ci_low: float
    ci_high: float
    draws: int


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean and Student-t confidence interval over independent draws."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return Estimate(mean, mean, mean, len(values))
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return Estimate(mean, mean - half, mean + half, len(values))


def sign_draws(n: int, draws: int, audit_seed: int) -> list[torch.Tensor]:
    return [torch.from_numpy(np.random.default_rng(derive_seed(audit_seed, "rademacher-sigma", i)).choice([-1.0, 1.0], size=n)) for i in range(draws)]


def check_two_logit_head(architecture: ArchitectureSpec) -> None:
    """The global estimate trains a two-logit copy of the architecture: refuse up front one that cannot have it
    (a graph whose logits do not come from a Linear or Conv head), naming the option that skips it."""
    try:
        with_num_classes(architecture, 2)
    except InputError as error:
        message = f"{error.message}; set fit_signs false (--rad-no-fit)"
        raise InputError("spec.rademacher.fit_signs", message, error.reason) from None


def global_rademacher(
    architecture: ArchitectureSpec, x: torch.Tensor, draws: int, training: TrainingSpec, audit_seed: int, engine: EngineOptions = EngineOptions()
) -> Estimate:
    """Fit each σ draw with a fresh network (two logits: sign(f₁ − f₀) is a one-logit sign classifier)."""
    binary = with_num_classes(architecture, 2)
    sigmas = sign_draws(len(x), draws, audit_seed)
    trials = [TrialInputs(derive_seed(audit_seed, "rademacher-fit", i), ((s + 1) / 2).long().to(x.device)) for i, s in enumerate(sigmas)]
    shared = SharedData(x, x[:1], torch.zeros(1, dtype=torch.long, device=x.device))
    outcomes, _ = train_trials(binary, shared, trials, training, options=engine)
    return t_interval([2 * o.train_accuracy - 1 for o in outcomes])


def local_rademacher(
    model: nn.Module, x: torch.Tensor, radius: float, sigmas: list[torch.Tensor], steps: int, seed: int = 0, per_tensor: bool = False
) -> Estimate:
    """Projected gradient ascent on (1/n) Σ σ_i f_w(x_i) about w₀, one run per σ draw; each draw scores
    its increment over w₀ (see the module docstring), so the estimate is ≥ 0.

    The set is the ball ‖w − w₀‖₂ ≤ radius, or with `per_tensor` the product of balls
    ‖W − W₀‖_F ≤ radius·‖W₀‖_F, one per parameter tensor (layer-wise Frobenius balls; `radius` is
    then relative).
    """
    model = model.eval()
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    outputs = model(x[:1]).shape[1]
    u = torch.randn(outputs, generator=torch.Generator().manual_seed(seed), dtype=x.dtype).to(x.device)
    u /= u.norm()
    limits = {name: radius * float(w.norm()) for name, w in start.items()} if per_tensor else None

    def correlation(shift: dict[str, torch.Tensor], sigma: torch.Tensor) -> torch.Tensor:
        params = {name: start[name] + shift[name] for name in start}
        return (sigma * (functional_call(model, (params, buffers), (x,)) @ u)).mean()

    def project(offset: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if limits is None:
            return _shrink(offset, radius)
        return {name: _shrink({name: o}, limits[name])[name] for name, o in offset.items()}

    step = 2.0 * (radius if limits is None else max(limits.values())) / steps
    return t_interval([_ascend(correlation, project, start, sigma.to(x.device, x.dtype), step, steps) for sigma in sigmas])


def _shrink(offset: dict[str, torch.Tensor], limit: float) -> dict[str, torch.Tensor]:
    """Euclidean projection of the joint vector `offset` onto the ball of radius `limit`."""
    length = math.sqrt(sum(float((o**2).sum()) for o in offset.values()))
    if length <= limit:
        return offset
    return {name: o * (limit / length) for name, o in offset.items()}


def _ascend(correlation, project, start: dict[str, torch.Tensor], sigma: torch.Tensor, step: float, steps: int) -> float:
    """Normalised gradient steps of length `step`, projected back onto the set; the best increment over w₀ seen
    (the start is in the set, so never below 0)."""
    offset = {name: torch.zeros_like(p) for name, p in start.items()}
    base = float(correlation(offset, sigma))
    best = base
    for _ in range(steps):
        for t in offset.values():
            t.requires_grad_(True)
        grads = torch.autograd.grad(correlation(offset, sigma), list(offset.values()))
        norm = math.sqrt(sum(float((g**2).sum()) for g in grads))
        if norm == 0:
            break
        with torch.no_grad():
            offset = project({name: o.detach() + step * g / norm for (name, o), g in zip(offset.items(), grads)})
            best = max(best, float(correlation(offset, sigma)))
    return best - base
