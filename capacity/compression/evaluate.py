"""Evaluating many compressed variants of one model: stacked in one pass (vmap), or one by one.

Stacking pays where a pass is overhead-bound (small networks, GPUs); on a CPU a convolutional
network is compute-bound and vmap's batched kernels are slower than plain ones (bench/RESULTS.md,
"pruning sweep"), so there variants run one after another, their weights written into the model in
place (and the originals restored), never by copying the model.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from effcap.capacity.models.flops import multiply_adds

VARIANTS_PER_PASS = 8
EXAMPLES_PER_PASS = 512
# Per-example multiply-adds up to which a CPU evaluates variants stacked: forward passes alone are
# compute-bound sooner than training steps (a ResNet-20 sweep ran at 0.37-0.48x stacked).
CPU_STACK_VARIANTS_MAX_MULTIPLY_ADDS = 32_768


def stack_variants(model: nn.Module, example_shape: tuple[int, ...], device: torch.device) -> bool:
    return device.type != "cpu" or multiply_adds(model, example_shape) <= CPU_STACK_VARIANTS_MAX_MULTIPLY_ADDS


@torch.no_grad()
def evaluate_variants(
    model: nn.Module, variants: list[dict[str, torch.Tensor]], x: torch.Tensor, y: torch.Tensor, stacked: bool | None = None
) -> list[tuple[float, float]]:
    """(accuracy, mean cross-entropy) of `model` with each variant's tensors substituted."""
    model = model.eval()
    base = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    if stacked is None:
        stacked = stack_variants(model, tuple(x.shape[1:]), x.device)
    if not stacked:
        return [_evaluate_in_place(model, variant, x, y) for variant in variants]
    results: list[tuple[float, float]] = []
    forward = vmap(lambda p, xb: functional_call(model, (p, buffers), (xb,)), in_dims=(0, None))
    for start in range(0, len(variants), VARIANTS_PER_PASS):
        chunk = variants[start : start + VARIANTS_PER_PASS]
        params = {name: torch.stack([v.get(name, p) for v in chunk]) for name, p in base.items()}
        correct = torch.zeros(len(chunk), device=x.device)
        loss = torch.zeros(len(chunk), device=x.device)
        for i in range(0, len(x), EXAMPLES_PER_PASS):
            logits = forward(params, x[i : i + EXAMPLES_PER_PASS])
            target = y[i : i + EXAMPLES_PER_PASS]
            correct += (logits.argmax(dim=2) == target).sum(dim=1)
            loss += F.cross_entropy(logits.transpose(1, 2), target.expand(len(chunk), -1), reduction="none").sum(dim=1)
        results.extend(zip((correct / len(x)).tolist(), (loss / len(x)).tolist()))
    return results


@torch.no_grad()
def _evaluate_in_place(model: nn.Module, variant: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    parameters = dict(model.named_parameters())
    originals = {name: parameters[name].detach().clone() for name in variant}
    try:
        for name, tensor in variant.items():
            parameters[name].copy_(tensor)
        correct, loss = 0, 0.0
        for i in range(0, len(x), EXAMPLES_PER_PASS):
            logits = model(x[i : i + EXAMPLES_PER_PASS])
            target = y[i : i + EXAMPLES_PER_PASS]
            correct += int((logits.argmax(dim=1) == target).sum())
            loss += float(F.cross_entropy(logits, target, reduction="sum"))
    finally:
        for name, tensor in originals.items():
            parameters[name].copy_(tensor)
    return correct / len(x), loss / len(x)
