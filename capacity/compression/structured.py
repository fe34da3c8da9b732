"""Structured pruning of MLPs: hidden neurons removed physically, so the network really shrinks.

A neuron's score is ‖incoming weights and bias‖₂ · ‖outgoing weights‖₂: a unit with either side at
zero contributes nothing and goes first. The smaller network is a valid MLP spec with its own
weights, so its parameter count and forward time are measured, not inferred from masks.
"""

from __future__ import annotations

import torch

from effcap.capacity.models.spec import MLPSpec


def neuron_scores(state: dict[str, torch.Tensor], layer: int, depth: int) -> torch.Tensor:
    incoming = state[f"hidden.{layer}.weight"]
    bias = state.get(f"hidden.{layer}.bias")
    in_norm = torch.sqrt((incoming**2).sum(dim=1) + (bias**2 if bias is not None else 0))
    outgoing = state["head.weight"] if layer == depth - 1 else state[f"hidden.{layer + 1}.weight"]
    return in_norm * outgoing.norm(dim=0)


def remove_neurons(spec: MLPSpec, state: dict[str, torch.Tensor], fraction: float) -> tuple[MLPSpec, dict[str, torch.Tensor]]:
    """Drop the lowest-scoring `fraction` of neurons in every hidden layer (at least one stays)."""
    depth = len(spec.hidden_sizes)
    state = dict(state)
    sizes = []
    for layer in range(depth):
        scores = neuron_scores(state, layer, depth)
        keep_count = max(1, round(len(scores) * (1 - fraction)))
        keep = torch.sort(torch.topk(scores, keep_count).indices).values
        state[f"hidden.{layer}.weight"] = state[f"hidden.{layer}.weight"][keep]
        if f"hidden.{layer}.bias" in state:
            state[f"hidden.{layer}.bias"] = state[f"hidden.{layer}.bias"][keep]
        following = "head.weight" if layer == depth - 1 else f"hidden.{layer + 1}.weight"
        state[following] = state[following][:, keep]
        sizes.append(keep_count)
    return spec.model_copy(update={"hidden_sizes": tuple(sizes)}), state
