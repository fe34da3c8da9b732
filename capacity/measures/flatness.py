"""Jiang et al. (2020)'s flatness measures: how large a weight perturbation the training error tolerates.

With err(w) the 0-1 error on the training examples and Δ(u) = err(w + u) − err(w) (appendix C.9-C.10 of
"Fantastic generalization measures", equation numbers in docs/measures.md):
- PAC-Bayes flatness σ': the largest σ with E_u Δ(u) ≤ 0.1 for Gaussian u ~ N(0, σ²I) (flatness 1/σ'², eq. 53),
  or, magnitude-aware, u_i ~ N(0, σ²w_i² + ε²) (eq. 55; flatness eq. 61);
- sharpness α': the largest α with max_{|u_i| ≤ α} Δ(u) ≤ 0.1 (flatness 1/α'², eq. 54), or, magnitude-aware,
  |u_i| ≤ α|w_i| + ε (flatness eq. 62); the max is a projected sign-gradient ascent on the cross-entropy from
  random starts, so α' is an upper estimate of the true one (the ascent may miss the worst point).
ε = 1e-3. Both scales come from bisection on [0, upper]. The random numbers are drawn once and rescaled for
every scale tried (common random numbers), so Δ is one deterministic function of the scale per seed, and the
bisection, with no early stop, returns a scale that is monotone in the threshold. Every perturbed network of a
step is evaluated at once, parameters stacked on a sample axis (torch.func), as the training engine stacks trials.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from effcap.capacity.engine.trainer import EVAL_BATCH

MAGNITUDE_EPSILON = 1e-3
ERROR_INCREASE_THRESHOLD = 0.1
# Jiang et al.'s search: 15 bisection steps on [0, 2], 10 Monte-Carlo networks per step.
BISECTION_STEPS = 15
UPPER = 2.0
SAMPLES = 10
# The sharpness ascent's starts and steps per scale (docs/decisions.md says why so few).
RESTARTS = 2
ASCENT_STEPS = 3
Noise = Literal["isotropic", "magnitude"]
# Examples per gradient call of the sharpness ascent (times the starts): bounds the activations held for backward.
_ASCENT_CHUNK = 256
# Stacked copies of the parameters held at once: bounds memory to ~256 MiB of float32 whatever the model.
_STACKED_FLOATS = 2**26
# Networks × examples per vmapped forward of stacked_errors: 10 networks' activations for 1,024 examples at once set a
# digits MLP worker's peak; the error is a count, so the blocks change nothing but memory.
_STACKED_EXAMPLES = 2048


@dataclass(frozen=True)
class Flatness:
    # σ' or α': the largest scale found with an error increase ≤ threshold.
    scale: float
    # Δ at `scale` (0 when scale is 0).
    error_increase: float
    threshold: float
    # True when even `upper` kept Δ within the threshold: `scale` is then a lower bound on the true one.
    capped: bool
    forward_passes: int

    @property
    def flatness(self) -> float:
        """1/scale², Jiang et al.'s form (larger is sharper); infinite at scale 0."""
        return 1 / self.scale**2 if self.scale > 0 else math.inf


def largest_tolerated_scale(
    increase: Callable[[float], float], threshold: float, upper: float, steps: int
) -> tuple[float, float, bool]:
    """(scale, increase at it, capped): bisection on [0, upper] for the largest scale with increase ≤ threshold.

    Without an early stop every answer is a dyadic point of [0, upper] and, for one function, a larger threshold
    never gives a smaller scale (the searches agree until the first midpoint between the two thresholds).
    """
    at_upper = increase(upper)
    if at_upper <= threshold:
        return upper, at_upper, True
    low, at_low, high = 0.0, 0.0, upper
    for _ in range(steps):
        middle = (low + high) / 2
        value = increase(middle)
        if value <= threshold:
            low, at_low = middle, value
        else:
            high = middle
    return low, at_low, False


@torch.no_grad()
def pac_bayes_flatness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    noise: Noise = "isotropic",
    threshold: float = ERROR_INCREASE_THRESHOLD,
    samples: int = SAMPLES,
    steps: int = BISECTION_STEPS,
    upper: float = UPPER,
    seed: int = 0,
) -> Flatness:
    """σ' of eq. 53 (isotropic) or of eq. 61 (magnitude-aware), E_u Δ estimated from `samples` networks."""
    model = model.eval()
    weights = {name: p.detach() for name, p in model.named_parameters()}
    base = stacked_errors(model, {k: v[None] for k, v in weights.items()}, x, y)[0]
    generator = torch.Generator(device=x.device).manual_seed(seed)
    draws = {
        k: torch.randn((samples, *v.shape), generator=generator, device=v.device, dtype=v.dtype)
        for k, v in weights.items()
    }
    passes = 1

    def mean_increase(sigma: float) -> float:
        nonlocal passes
        passes += samples
        stacked = {k: weights[k] + noise_scale(weights[k], sigma, noise) * draws[k] for k in weights}
        return float(stacked_errors(model, stacked, x, y).mean() - base)

    scale, increase, capped = largest_tolerated_scale(mean_increase, threshold, upper, steps)
    return Flatness(scale, increase, threshold, capped, passes)


def noise_scale(weight: torch.Tensor, sigma: float, noise: Noise) -> torch.Tensor | float:
    """Each weight's noise standard deviation: σ, or √(σ²w² + ε²) (Jiang et al., eq. 55)."""
    if noise == "isotropic":
        return sigma
    return torch.sqrt(sigma**2 * weight**2 + MAGNITUDE_EPSILON**2)


def box_half_width(weight: torch.Tensor, alpha: float, noise: Noise) -> torch.Tensor:
    """Each weight's largest perturbation in the sharpness box: α, or α|w| + ε (magnitude-aware)."""
    if noise == "isotropic":
        return torch.full_like(weight, alpha)
    return alpha * weight.abs() + MAGNITUDE_EPSILON


def sharpness_flatness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    noise: Noise = "isotropic",
    threshold: float = ERROR_INCREASE_THRESHOLD,
    restarts: int = RESTARTS,
    ascent_steps: int = ASCENT_STEPS,
    steps: int = BISECTION_STEPS,
    upper: float = UPPER,
    seed: int = 0,
) -> Flatness:
    """α' of eq. 54 (isotropic) or eq. 62 (magnitude-aware): max Δ by `restarts` batched ascents per scale."""
    model = model.eval()
    weights = {name: p.detach() for name, p in model.named_parameters()}
    with torch.no_grad():
        base = stacked_errors(model, {k: v[None] for k, v in weights.items()}, x, y)[0]
    generator = torch.Generator(device=x.device).manual_seed(seed)
    starts = {
        k: 2 * torch.rand((restarts, *v.shape), generator=generator, device=v.device, dtype=v.dtype) - 1
        for k, v in weights.items()
    }
    passes = 1

    def worst_increase(alpha: float) -> float:
        nonlocal passes
        passes += restarts * (ascent_steps + 1)
        widths = {k: box_half_width(v, alpha, noise) for k, v in weights.items()}
        offsets = worst_offsets(model, weights, widths, {k: widths[k] * starts[k] for k in weights}, x, y, ascent_steps)
        with torch.no_grad():
            errors = stacked_errors(model, {k: weights[k] + offsets[k] for k in weights}, x, y)
        return float(errors.max() - base)

    scale, increase, capped = largest_tolerated_scale(worst_increase, threshold, upper, steps)
    return Flatness(scale, increase, threshold, capped, passes)


def worst_offsets(
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    widths: dict[str, torch.Tensor],
    offsets: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    ascent_steps: int,
) -> dict[str, torch.Tensor]:
    """Projected sign-gradient ascent of the training cross-entropy over the box |u| ≤ widths, every start at once.

    Each step moves every weight by its box's half-width in the direction that raises the loss, then clips to the
    box: from any start, the corner where a loss linear in u has its maximum is reached within two steps (a
    fast-gradient-sign ascent; a few steps keep the search cheap, at the price of an upper estimate of α').
    """

    def loss(offset: dict[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        perturbed = {k: weights[k] + offset[k] for k in weights}
        return F.cross_entropy(functional_call(model, perturbed, (xs,)), ys, reduction="sum")

    ascent = vmap(grad(loss), in_dims=(0, None, None))
    for _ in range(ascent_steps):
        # The gradient of the summed loss, in chunks of examples: the activations of every start held for a chunk only.
        chunks = [
            ascent(offsets, x[i : i + _ASCENT_CHUNK], y[i : i + _ASCENT_CHUNK]) for i in range(0, len(x), _ASCENT_CHUNK)
        ]
        gradients = {k: sum(chunk[k] for chunk in chunks) for k in offsets}
        offsets = {k: torch.clamp(offsets[k] + widths[k] * gradients[k].sign(), -widths[k], widths[k]) for k in offsets}
    return offsets


@torch.no_grad()
def stacked_errors(
    model: nn.Module, stacked: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """0-1 training error of every network of a stack of parameters (first axis), evaluated in bounded chunks."""
    count = next(iter(stacked.values())).shape[0]
    per_network = sum(v[0].numel() for v in stacked.values())
    chunk = max(1, _STACKED_FLOATS // max(per_network, 1))

    def wrong(params: dict[str, torch.Tensor], xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        return (functional_call(model, params, (xs,)).argmax(dim=1) != ys).sum()

    errors = []
    for first in range(0, count, chunk):
        part = {k: v[first : first + chunk] for k, v in stacked.items()}
        examples = min(EVAL_BATCH, max(1, _STACKED_EXAMPLES // len(next(iter(part.values())))))
        total = sum(
            vmap(wrong, in_dims=(0, None, None))(part, x[start : start + examples], y[start : start + examples])
            for start in range(0, len(x), examples)
        )
        errors.append(total.double() / len(x))
    return torch.cat(errors)


def sharpness_examples(examples: int) -> int:
    """Examples through a forward and backward pass in the two sharpness searches (the upper end and each bisection
    step, every start, every ascent step), for the server's admission check; forward-only passes are not counted."""
    return 2 * (BISECTION_STEPS + 1) * RESTARTS * ASCENT_STEPS * examples
