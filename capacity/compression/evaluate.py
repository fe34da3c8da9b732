"""Evaluating many compressed variants of one model in a single pass (vmap over stacked weights)."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

VARIANTS_PER_PASS = 8
EXAMPLES_PER_PASS = 512


@torch.no_grad()
def evaluate_variants(
    model: nn.Module, variants: list[dict[str, torch.Tensor]], x: torch.Tensor, y: torch.Tensor
) -> list[tuple[float, float]]:
    """(accuracy, mean cross-entropy) of `model` with each variant's tensors substituted."""
    model = model.eval()
    base = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    results: list[tuple[float, float]] = []
    for start in range(0, len(variants), VARIANTS_PER_PASS):
        chunk = variants[start : start + VARIANTS_PER_PASS]
        stacked = {name: torch.stack([v.get(name, p) for v in chunk]) for name, p in base.items()}
        forward = vmap(lambda params, xb: functional_call(model, (params, buffers), (xb,)), in_dims=(0, None))
        correct = torch.zeros(len(chunk), device=x.device)
        loss = torch.zeros(len(chunk), device=x.device)
        for i in range(0, len(x), EXAMPLES_PER_PASS):
            logits = forward(stacked, x[i : i + EXAMPLES_PER_PASS])
            target = y[i : i + EXAMPLES_PER_PASS]
            correct += (logits.argmax(dim=2) == target).sum(dim=1)
            loss += F.cross_entropy(logits.transpose(1, 2), target.expand(len(chunk), -1), reduction="none").sum(dim=1)
        results.extend(zip((correct / len(x)).tolist(), (loss / len(x)).tolist()))
    return results
