"""PAC-Bayes sharpness: the largest Gaussian weight perturbation that keeps train accuracy.

σ is found by bisection on [0, upper] (Jiang et al. 2020: 15 steps, 10 Monte-Carlo samples, a target
accuracy drop of 0.1 ± 0.01). The noise has standard deviation σ (not σ², a slip in public code);
the magnitude-aware σ′ scales each weight's noise by |w| + ε (ε = 1e-3). Flatness is 1/σ².
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from effcap.capacity.engine.trainer import evaluate

MAGNITUDE_EPSILON = 1e-3
TARGET_ACCURACY_DROP = 0.1


@dataclass(frozen=True)
class Sharpness:
    sigma: float
    # Accuracy drop measured at `sigma`.
    accuracy_drop: float
    # Train error of the perturbed networks at `sigma` (the posterior's empirical error).
    perturbed_error: float
    forward_passes: int
    # How many σ the search can return (the dyadic midpoints of [0, upper] at its depth): a bound that
    # uses the σ found pays a union bound over all of them.
    grid_size: int


@torch.no_grad()
def sharpness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    magnitude_aware: bool = False,
    target_drop: float = TARGET_ACCURACY_DROP,
    tolerance: float = 0.01,
    steps: int = 15,
    samples: int = 10,
    upper: float = 2.0,
    seed: int = 0,
) -> Sharpness:
    model = model.eval()
    base = evaluate(model, x, y)[1]
    original = [p.detach().clone() for p in model.parameters()]
    perturbed = copy.deepcopy(model)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    passes = 0

    def mean_accuracy(sigma: float) -> float:
        nonlocal passes
        passes += samples
        return _mean_perturbed_accuracy(perturbed, original, x, y, sigma, samples, generator, magnitude_aware)

    lo, hi = 0.0, upper
    best = (0.0, 0.0, 1.0 - base)
    for _ in range(steps):
        mid = (lo + hi) / 2
        accuracy = mean_accuracy(mid)
        drop = base - accuracy
        if drop > target_drop:
            hi = mid
        else:
            lo = mid
            best = (mid, drop, 1.0 - accuracy)
        if abs(drop - target_drop) <= tolerance:
            best = (mid, drop, 1.0 - accuracy)
            break
    return Sharpness(best[0], best[1], best[2], passes, 2**steps - 1)


@torch.no_grad()
def perturbed_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float, samples: int, seed: int) -> float:
    """Mean train error of `samples` networks w + N(0, σ²I): a Monte-Carlo estimate of the posterior's error,
    from draws the caller keeps independent of how σ was chosen."""
    model = model.eval()
    original = [p.detach().clone() for p in model.parameters()]
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return 1.0 - _mean_perturbed_accuracy(copy.deepcopy(model), original, x, y, sigma, samples, generator, False)


def _mean_perturbed_accuracy(
    perturbed: nn.Module, original: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, sigma: float, samples: int,
    generator: torch.Generator, magnitude_aware: bool,
) -> float:  # fmt: skip
    total = 0.0
    for _ in range(samples):
        for p, w in zip(perturbed.parameters(), original):
            scale = sigma * (w.abs() + MAGNITUDE_EPSILON) if magnitude_aware else sigma
            p.copy_(w + scale * torch.randn(w.shape, generator=generator, device=w.device, dtype=w.dtype))
        total += evaluate(perturbed, x, y)[1]
    return total / samples
