"""Structured pruning: neurons and channels removed physically, so the network really shrinks.

A unit's score is the size of what feeds it times the size of what it feeds: ‖incoming weights and
bias‖₂ (for a conv followed by BatchNorm, |γ| + |β|, since BatchNorm rescales the conv away) times
‖outgoing weights‖₂. A unit with either side at zero contributes nothing and goes first. The smaller
network is a valid spec of the same family with its own weights, so its parameter count and forward
time are measured, not inferred from masks. Families whose graph ties channels together
(concatenations, residual adds, LRN) are not pruned structurally yet.
"""

from __future__ import annotations

import torch

from effcap.capacity.models.spec import ArchitectureSpec, MLPSpec, SmallCNNSpec

STRUCTURED_FAMILIES = ("mlp", "small_cnn")


def structured_prune(spec: ArchitectureSpec, state: dict[str, torch.Tensor], fraction: float) -> tuple[ArchitectureSpec, dict[str, torch.Tensor]]:
    """The smaller network without the lowest-scoring `fraction` of units in every hidden layer."""
    if isinstance(spec, MLPSpec):
        return remove_neurons(spec, state, fraction)
    if isinstance(spec, SmallCNNSpec):
        return remove_channels(spec, state, fraction)
    raise ValueError(f"structured pruning supports {STRUCTURED_FAMILIES}, not {spec.family}")


def _keep(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    count = max(1, round(len(scores) * (1 - fraction)))
    return torch.sort(torch.topk(scores, count).indices).values


def remove_channels(spec: SmallCNNSpec, state: dict[str, torch.Tensor], fraction: float) -> tuple[SmallCNNSpec, dict[str, torch.Tensor]]:
    """Drop the lowest-scoring `fraction` of channels of every conv block (through its BatchNorm)."""
    state = dict(state)
    blocks = len(spec.channels)
    sizes = []
    for i in range(blocks):
        conv, norm = f"features.{2 * i}.0", f"features.{2 * i}.1"
        following = "head.weight" if i == blocks - 1 else f"features.{2 * (i + 1)}.0.weight"
        if spec.batch_norm:
            feeding = state[f"{norm}.weight"].abs() + state[f"{norm}.bias"].abs()
        else:
            w = state[f"{conv}.weight"]
            feeding = torch.sqrt((w.reshape(len(w), -1) ** 2).sum(dim=1) + state[f"{conv}.bias"] ** 2)
        keep = _keep(feeding * state[following].transpose(0, 1).reshape(len(feeding), -1).norm(dim=1), fraction)
        for key in [f"{conv}.weight", f"{conv}.bias"] + ([f"{norm}.{p}" for p in ("weight", "bias", "running_mean", "running_var")] if spec.batch_norm else []):
            if key in state:
                state[key] = state[key][keep]
        state[following] = state[following][:, keep]
        sizes.append(len(keep))
    return spec.model_copy(update={"channels": tuple(sizes)}), state


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
        keep = _keep(neuron_scores(state, layer, depth), fraction)
        keep_count = len(keep)
        state[f"hidden.{layer}.weight"] = state[f"hidden.{layer}.weight"][keep]
        if f"hidden.{layer}.bias" in state:
            state[f"hidden.{layer}.bias"] = state[f"hidden.{layer}.bias"][keep]
        following = "head.weight" if layer == depth - 1 else f"hidden.{layer + 1}.weight"
        state[following] = state[following][:, keep]
        sizes.append(keep_count)
    return spec.model_copy(update={"hidden_sizes": tuple(sizes)}), state
