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
from scipy.special import stdtrit
from torch import nn

from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.strategy import EngineOptions, train_trials
from effcap.capacity.errors import InputError
from effcap.capacity.measures.local_ascent import ascend_all
from effcap.capacity.models import ArchitectureSpec, with_num_classes
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import TrainingSpec

CONFIDENCE = 0.95
# Ascents stepped together in one vmapped call. On 2 CPU cores, digits MLP 2x512 on 1,000 examples, 20 steps of
# 8 trials: 6.4 CPU-s one at a time, 4.5 s in groups of 4 or 8; 32 at once took 1.6x as long as 4 groups of 8
# (memory traffic of the stacked activations) and 870 MiB. In blocks of 250 examples (local_ascent.py), 4 at a
# time take the same CPU time as 8 and hold 78 MiB instead of 134 (10 steps; 2 at a time: 17% more CPU, 42 MiB).
TRIALS_PER_CALL = 4


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
    # stdtrit is the t quantile scipy.stats.t.ppf computes, without importing scipy.stats in every worker (the
    # analysis modules' resident set went from 75 to 40 MiB; bench/rademacher_cost.py's import stages).
    quantile = float(stdtrit(len(values) - 1, (1 + confidence) / 2))
    half = quantile * float(np.std(values, ddof=1)) / math.sqrt(len(values))
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
    return local_rademacher_radii(model, x, [radius], sigmas, steps, seed, per_tensor)[0]


def local_rademacher_radii(
    model: nn.Module, x: torch.Tensor, radii: list[float], sigmas: list[torch.Tensor], steps: int, seed: int = 0, per_tensor: bool = False
) -> list[Estimate]:
    """`local_rademacher` at every radius, all (radius, draw) ascents stepped together (local_ascent.py)."""
    model = model.eval()
    outputs = model(x[:1]).shape[1]
    u = torch.randn(outputs, generator=torch.Generator().manual_seed(seed), dtype=x.dtype).to(x.device)
    u /= u.norm()
    stacked = torch.stack([s.to(x.device, x.dtype) for s in sigmas])
    radius_per_trial = torch.tensor(radii, dtype=x.dtype, device=x.device).repeat_interleave(len(sigmas))
    limits = radius_per_trial
    if per_tensor:
        norms = torch.stack([p.detach().norm() for p in model.parameters()]).to(x.dtype)
        limits = radius_per_trial[:, None] * norms[None, :]
    sigma_per_trial = stacked.repeat(len(radii), 1)
    groups = [slice(start, start + TRIALS_PER_CALL) for start in range(0, len(limits), TRIALS_PER_CALL)]
    increments = torch.cat([ascend_all(model, x, u, sigma_per_trial[g], limits[g], steps) for g in groups]).tolist()
    estimates = [t_interval(increments[i * len(sigmas) : (i + 1) * len(sigmas)]) for i in range(len(radii))]
    return [_at_least_zero(e) for e in estimates]


def _at_least_zero(estimate: Estimate) -> Estimate:
    """The interval cut at 0: every draw's increment is ≥ 0, so R̂ is, and [max(0, low), high] covers it whenever
    [low, high] does (a review saw [-0.0034, 0.0296] printed for a quantity the docs call never negative)."""
    return Estimate(estimate.mean, max(0.0, estimate.ci_low), estimate.ci_high, estimate.draws)
