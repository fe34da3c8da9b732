"""Model families: declarative specs and the torch modules built from them."""

from __future__ import annotations

import math

import torch
from torch import nn

from effcap.capacity.errors import InputError
from effcap.capacity.models.mlp import MLP
from effcap.capacity.models.spec import ArchitectureSpec, MLPSpec, parse_architecture

__all__ = ["ArchitectureSpec", "MLPSpec", "build_model", "check_fits_dataset", "count_parameters", "parse_architecture"]


def build_model(spec: ArchitectureSpec, *, seed: int | None = None, device: torch.device | str = "cpu") -> nn.Module:
    """A freshly initialised module for `spec` (the family's default init).

    Weights are always drawn on the CPU, from a private RNG stream when `seed` is given, so a
    trial's initialisation is the same on every device and never disturbs the caller's global
    RNG. On the meta device nothing is allocated: that is how checkpoints are checked cheaply.
    """
    if torch.device(device).type == "meta":
        with torch.device("meta"):
            return MLP(spec)
    if seed is None:
        return MLP(spec).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(spec).to(device)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_fits_dataset(spec: ArchitectureSpec, input_shape: tuple[int, ...], num_classes: int) -> None:
    """The architecture must take the dataset's inputs and have a logit for every class."""
    if math.prod(spec.input_shape) != math.prod(input_shape) or (len(spec.input_shape) > 1 and tuple(spec.input_shape) != tuple(input_shape)):
        raise InputError(
            "spec.architecture.input_shape",
            f"is {list(spec.input_shape)} but the dataset's examples have shape {list(input_shape)}",
            reason="MODEL_DATA_MISMATCH",
        )
    if spec.num_classes < num_classes:
        raise InputError(
            "spec.architecture.num_classes",
            f"is {spec.num_classes} but the dataset has {num_classes} classes",
            reason="MODEL_DATA_MISMATCH",
        )
