"""Projected gradient ascents for local Rademacher estimates, every (radius, draw) pair at once.

Each pair is a trial: its weight offset is stacked on a leading trial axis and one vmapped
gradient call steps them all (as the engine stacks trainings), instead of one
`functional_call` ascent after another. The arithmetic per trial is unchanged: normalised steps
of length 2·limit/steps, projection onto the trial's set, and the best increment over w₀ seen.
Each step sums the objective and its gradient over blocks of examples (the objective is a mean over
examples, so the sum is the same up to float rounding): the stacked activations of a block, not of
all n examples, are what a step holds.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

# Examples per vmapped gradient call. On the digits MLP 2x512 (8 trials of 1,000 examples), blocks of 250
# hold a quarter of the stacked activations of the whole set, at the same speed (bench/RESULTS.md).
EXAMPLES_PER_CALL = 250


def ascend_all(
    model: nn.Module, x: torch.Tensor, u: torch.Tensor, sigmas: torch.Tensor, limits: torch.Tensor, steps: int
) -> torch.Tensor:
    """Best increments over w₀ of (1/n) Σ σ_i u·f_w(x_i), one per trial.

    `sigmas` is (trials, n); `limits` is (trials,) for one ball ‖w − w₀‖ ≤ limit per trial, or
    (trials, tensors) for a product of balls ‖W − W₀‖_F ≤ limit, one per parameter tensor in
    `named_parameters` order.
    """
    start = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    trials = len(sigmas)
    per_tensor = limits.dim() == 2

    n = len(x)
    blocks = [slice(first, first + EXAMPLES_PER_CALL) for first in range(0, n, EXAMPLES_PER_CALL)]

    def correlation(offset: dict[str, torch.Tensor], sigma: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        params = {name: start[name] + offset[name] for name in start}
        return (sigma * (functional_call(model, (params, buffers), (inputs,)) @ u)).sum() / n

    block_step = vmap(grad_and_value(correlation), in_dims=(0, 0, None))

    def step_and_value(
        offset: dict[str, torch.Tensor], sigmas: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        grads, value = block_step(offset, sigmas[:, blocks[0]], x[blocks[0]])
        for block in blocks[1:]:
            more, more_value = block_step(offset, sigmas[:, block], x[block])
            for name, g in more.items():
                grads[name] += g
            value += more_value
        return grads, value

    offset = {name: torch.zeros(trials, *p.shape, dtype=p.dtype, device=p.device) for name, p in start.items()}
    step = 2.0 * (limits.amax(dim=1) if per_tensor else limits) / steps
    base, best = None, None
    for iteration in range(steps + 1):
        grads, value = step_and_value(offset, sigmas)
        base = value if base is None else base
        best = value if best is None else torch.maximum(best, value)
        if iteration == steps:
            break  # the last iterate is scored; a step from it would never be
        norm = _joint_norm(grads)
        direction = torch.where(norm > 0, step / norm.clamp_min(torch.finfo(norm.dtype).tiny), 0.0)
        offset = {name: o + _per_trial(direction, o) * grads[name] for name, o in offset.items()}
        offset = _project(offset, limits)
    return best - base


def _per_trial(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def _joint_norm(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum(t.flatten(1).pow(2).sum(dim=1) for t in tensors.values()))


def _project(offset: dict[str, torch.Tensor], limits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each trial's offset onto its ball (or each tensor's onto its own ball): shrink only what is outside."""
    if limits.dim() == 1:
        scale = (limits / _joint_norm(offset).clamp_min(torch.finfo(limits.dtype).tiny)).clamp(max=1.0)
        return {name: o * _per_trial(scale, o) for name, o in offset.items()}
    projected = {}
    for column, (name, o) in enumerate(offset.items()):
        length = o.flatten(1).norm(dim=1).clamp_min(torch.finfo(limits.dtype).tiny)
        projected[name] = o * _per_trial((limits[:, column] / length).clamp(max=1.0), o)
    return projected
