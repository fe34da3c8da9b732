"""Recovery fine-tuning of a pruned model with its masks fixed (reported apart from one-shot rows)."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.specs import TrainingSpec


def finetune_masked(
    model: nn.Module, variant: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, steps: int, training: TrainingSpec, seed: int
) -> dict[str, torch.Tensor]:
    """Train a copy of `model` carrying `variant` for `steps` SGD steps; pruned weights stay zero."""
    tuned = copy.deepcopy(model).train()
    parameters = dict(tuned.named_parameters())
    masks = {name: (w != 0) for name, w in variant.items()}
    with torch.no_grad():
        for name, w in variant.items():
            parameters[name].copy_(w)
    optimizer = torch.optim.SGD(tuned.parameters(), lr=training.learning_rate, momentum=training.momentum, weight_decay=training.weight_decay)
    order = torch.Generator().manual_seed(seed)
    for step in range(steps):
        if step % max(1, len(x) // training.batch_size) == 0:
            permutation = torch.randperm(len(x), generator=order).to(x.device)
        start = (step % max(1, len(x) // training.batch_size)) * training.batch_size
        batch = permutation[start : start + training.batch_size]
        loss = F.cross_entropy(tuned(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for name, mask in masks.items():
                parameters[name].mul_(mask)
    return {name: parameters[name].detach().clone() for name in variant}
