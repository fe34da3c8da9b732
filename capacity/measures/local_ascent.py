"""Projected gradient ascents for local Rademacher estimates, every (radius, draw) pair at once.

Each pair is a trial: its weight offset is stacked on a leading trial axis and one vmapped
gradient call steps them all (as the engine stacks trainings), instead of one
`functional_call` ascent after another. Each step sums the objective and its gradient over blocks of
examples (the objective is a mean over examples, so the sum is the same up to float rounding): the
stacked activations of a block, not of all n examples, are what a step holds.

The step length adapts per trial, because the evaluations are the whole cost (a forward and backward
pass over every example) and a fixed length wastes most of them: a fixed step of 2·limit/steps needs
half the budget just to reach the ball's boundary, where the supremum of a near-linear objective lies.
A candidate step moves each tensor along its gradient by `scale` times its limit (the whole ball's
limit for one ball, each tensor's own for a product of balls: the linear maximiser of each factor),
then projects; the candidate is kept only if it raises the objective, so the last kept iterate is the
best one seen. A kept step grows the scale by GROW (up to MAX_SCALE), a rejected one shrinks it by
SHRINK, and a trial stops once its scale falls below MIN_SCALE: it is at a point no step of that size
improves. The first candidate (scale 1) is the linear maximiser itself, exact for a linear objective.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

# Examples per vmapped gradient call. On the digits MLP 2x512 (8 trials of 1,000 examples), blocks of 250
# hold a quarter of the stacked activations of the whole set, at the same speed (bench/RESULTS.md).
EXAMPLES_PER_CALL = 250
GROW = 1.5
SHRINK = 0.5
MAX_SCALE = 2.0  # a step across the ball's diameter
MIN_SCALE = 1e-3


def ascend_all(
    model: nn.Module, x: torch.Tensor, u: torch.Tensor, sigmas: torch.Tensor, limits: torch.Tensor, steps: int
) -> torch.Tensor:
    """Best increments over w₀ of (1/n) Σ σ_i u·f_w(x_i), one per trial, from at most `steps` candidate steps
    (`steps + 1` gradient evaluations, w₀'s included).

    `sigmas` is (trials, n); `limits` is (trials,) for one ball ‖w − w₀‖ ≤ limit per trial, or
    (trials, tensors) for a product of balls ‖W − W₀‖_F ≤ limit, one per parameter tensor in
    `named_parameters` order.
    """
    start = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    n = len(x)
    blocks = [slice(first, first + EXAMPLES_PER_CALL) for first in range(0, n, EXAMPLES_PER_CALL)]

    def correlation(offset: dict[str, torch.Tensor], sigma: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        params = {name: start[name] + offset[name] for name in start}
        return (sigma * (functional_call(model, (params, buffers), (inputs,)) @ u)).sum() / n

    block_step = vmap(grad_and_value(correlation), in_dims=(0, 0, None))

    def gradient_and_value(offset: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        grads, value = block_step(offset, sigmas[:, blocks[0]], x[blocks[0]])
        for block in blocks[1:]:
            more, more_value = block_step(offset, sigmas[:, block], x[block])
            for name, g in more.items():
                grads[name] += g
            value += more_value
        return grads, value

    offset = {name: torch.zeros(len(sigmas), *p.shape, dtype=p.dtype, device=p.device) for name, p in start.items()}
    grads, value = gradient_and_value(offset)
    base = value.clone()
    scale = torch.ones_like(value)
    for _ in range(steps):
        active = scale >= MIN_SCALE
        if not bool(active.any()):
            break
        candidate = _project(_step(offset, grads, scale, limits), limits)
        candidate_grads, candidate_value = gradient_and_value(candidate)
        kept = active & (candidate_value > value)
        for name in offset:
            keep = _per_trial(kept, offset[name])
            offset[name] = torch.where(keep, candidate[name], offset[name])
            grads[name] = torch.where(keep, candidate_grads[name], grads[name])
        value = torch.where(kept, candidate_value, value)
        scale = torch.where(kept, (scale * GROW).clamp(max=MAX_SCALE), torch.where(active, scale * SHRINK, scale))
    return value - base


def _step(
    offset: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], scale: torch.Tensor, limits: torch.Tensor
) -> dict[str, torch.Tensor]:
    """offset + scale·limit·g/‖g‖, over the joint gradient for one ball, over each tensor's for a product of balls."""
    if limits.dim() == 1:
        length = _length(scale * limits, _joint_norm(grads))
        return {name: o + _per_trial(length, o) * grads[name] for name, o in offset.items()}
    stepped = {}
    for column, (name, o) in enumerate(offset.items()):
        length = _length(scale * limits[:, column], grads[name].flatten(1).norm(dim=1))
        stepped[name] = o + _per_trial(length, o) * grads[name]
    return stepped


def _length(step: torch.Tensor, gradient_norm: torch.Tensor) -> torch.Tensor:
    """step/‖g‖, and 0 where that is not finite (g = 0, or a subnormal ‖g‖ under a large step): a tensor with no
    gradient (a dead layer) stays put, where inf·0 would make every candidate NaN."""
    length = step / gradient_norm
    return torch.where(torch.isfinite(length) & (gradient_norm > 0), length, 0.0)


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
