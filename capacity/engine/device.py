"""Choosing the compute device once, so every part of an audit agrees on it."""

from __future__ import annotations

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """"auto" takes the first CUDA device when there is one, else the CPU."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so a wall-clock reading means what it says (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
