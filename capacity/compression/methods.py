"""Compression methods as pure functions from weights to compressed weights.

Prunable weights are the weight tensors of Linear and Conv layers (biases and normalisation
parameters are kept). Each method maps {name: weight} and a level to {name: compressed weight}.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from effcap.capacity.measures.layers import WEIGHT_LAYERS

# The layers whose weights are compressed: those the norm measures call weight layers.
PRUNABLE = WEIGHT_LAYERS


def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{name}.weight": module.weight.detach() for name, module in model.named_modules() if isinstance(module, PRUNABLE)}


def _keep_count(size: int, sparsity: float) -> int:
    return max(0, min(size, round(size * (1.0 - sparsity))))


def global_magnitude(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Keep the (1 − s)·P largest |w| over all layers together (unstructured)."""
    flat = torch.cat([w.abs().flatten() for w in weights.values()])
    keep = _keep_count(len(flat), sparsity)
    if keep == 0:
        return {k: torch.zeros_like(w) for k, w in weights.items()}
    threshold = torch.topk(flat, keep, sorted=True).values[-1]
    # Ties at the threshold are broken by position, so exactly `keep` weights survive.
    masks, budget = {}, keep - int((flat > threshold).sum())
    for name, w in weights.items():
        above, tied = w.abs() > threshold, w.abs() == threshold
        take = tied & (torch.cumsum(tied.flatten(), 0).reshape(w.shape) <= budget)
        budget -= int(take.sum())
        masks[name] = above | take
    return {name: w * masks[name] for name, w in weights.items()}


def layerwise_magnitude(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Keep the (1 − s) fraction of largest |w| within each layer."""
    return {name: global_magnitude({name: w}, sparsity)[name] for name, w in weights.items()}


def random_pruning(weights: dict[str, torch.Tensor], sparsity: float, seed: int) -> dict[str, torch.Tensor]:
    """The control: the same number of weights as global magnitude pruning, chosen at random."""
    flat = torch.cat([w.flatten() for w in weights.values()])
    keep = _keep_count(len(flat), sparsity)
    order = torch.randperm(len(flat), generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(len(flat), dtype=torch.bool)
    mask[order[:keep]] = True
    out, start = {}, 0
    for name, w in weights.items():
        out[name] = w * mask[start : start + w.numel()].reshape(w.shape).to(w.device)
        start += w.numel()
    return out


def _per_channel_codes(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer codes q = round(w/s) of each output channel's row, and the scales s = max|w|/(2^(b−1) − 1)."""
    levels = 2 ** (bits - 1) - 1
    rows = w.reshape(w.shape[0], -1)
    scale = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
    return torch.round(rows / scale).clamp(-levels, levels), scale


def quantize_per_channel(weights: dict[str, torch.Tensor], bits: int) -> dict[str, torch.Tensor]:
    """Symmetric uniform quantisation with one scale per output channel."""
    out = {}
    for name, w in weights.items():
        codes, scale = _per_channel_codes(w, bits)
        out[name] = (codes * scale).reshape(w.shape)
    return out


def quantized_symbols(weights: dict[str, torch.Tensor], bits: int) -> dict[str, torch.Tensor]:
    """The integer codes of quantize_per_channel (for code lengths)."""
    return {name: _per_channel_codes(w, bits)[0].to(torch.int64) for name, w in weights.items()}


def low_rank(weights: dict[str, torch.Tensor], energy: float) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Per-layer SVD truncation keeping the smallest rank whose singular values hold `energy` of Σσ²."""

    def rank_for(s: torch.Tensor) -> int:
        cumulative = torch.cumsum(s**2, 0) / (s**2).sum().clamp_min(1e-300)
        return int((cumulative < energy - 1e-12).sum()) + 1 if energy < 1 else len(s)

    return _truncated(weights, rank_for)


def low_rank_by_rank(weights: dict[str, torch.Tensor], fraction: float) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Per-layer SVD truncation to `fraction` of each layer's full rank (at least rank 1)."""
    return _truncated(weights, lambda s: max(1, math.floor(fraction * len(s) + 0.5)))  # halves round up


def _truncated(weights: dict[str, torch.Tensor], rank_for) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Each weight, as a (c_out, rest) matrix, replaced by its best approximation of the chosen rank."""
    out, ranks = {}, {}
    for name, w in weights.items():
        u, s, vh = torch.linalg.svd(w.reshape(w.shape[0], -1).double(), full_matrices=False)
        rank = ranks[name] = rank_for(s)
        out[name] = ((u[:, :rank] * s[:rank]) @ vh[:rank]).to(w.dtype).reshape(w.shape)
    return out, ranks


def stable_rank(w: torch.Tensor) -> float:
    """‖W‖_F² / ‖W‖₂² of the weight as a (c_out, rest) matrix."""
    s = torch.linalg.svdvals(w.reshape(w.shape[0], -1).double())
    return float((s**2).sum() / (s[0] ** 2)) if s[0] > 0 else 0.0


def effective_rank(w: torch.Tensor) -> float:
    """exp of the entropy of the normalised singular values (Roy and Vetterli 2007)."""
    s = torch.linalg.svdvals(w.reshape(w.shape[0], -1).double())
    p = s / s.sum().clamp_min(1e-300)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))
