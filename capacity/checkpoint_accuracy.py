"""The checkpoint's own accuracy on the audit's test split, as given: no training.

The randomization test reports networks trained afresh with the audit's budget (89% on digits, say),
which users read as their model's accuracy (97%). Reporting the checkpoint's own says which is which.
"""

from __future__ import annotations

import torch

from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.trainer import evaluate
from effcap.capacity.models import ArchitectureSpec, build_model


def checkpoint_test_accuracy(
    architecture: ArchitectureSpec, state: dict[str, torch.Tensor], dataset: Dataset, device: torch.device
) -> float | None:
    """Accuracy on the test split; None when there is none of the file's own (a split held out of the
    train split may hold examples the checkpoint was trained on)."""
    if dataset.test_split_held_out or len(dataset.x_test) == 0:
        return None
    model = build_model(architecture, device=device)
    model.load_state_dict(state)
    x = torch.from_numpy(dataset.x_test).to(device)
    y = torch.from_numpy(dataset.y_test).to(device=device, dtype=torch.long)
    return evaluate(model, x, y)[1]
