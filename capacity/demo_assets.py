"""The demo's inputs, made locally: an MLP checkpoint trained briefly on digits, and digits as .npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from effcap.capacity.checkpoint import save_checkpoint
from effcap.capacity.data.datasets import digits
from effcap.capacity.engine.trainer import DeviceData, train_trial
from effcap.capacity.models import MLPSpec, build_model
from effcap.capacity.specs import TrainingSpec

DEMO_ARCHITECTURE = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(512, 512))


def write_digits_npz(path: Path) -> None:
    data = digits()
    np.savez(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)


def write_demo_checkpoint(path: Path, seed: int = 0) -> None:
    """An MLP 2x512 trained on the true digits labels for a few epochs, saved as safetensors."""
    data = digits()
    tensors = DeviceData(*(torch.from_numpy(a) for a in (data.x_train, data.y_train, data.x_test, data.y_test)))
    model = build_model(DEMO_ARCHITECTURE, seed=seed)
    train_trial(model, tensors, TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, max_epochs=20), seed)
    save_checkpoint(path, DEMO_ARCHITECTURE, model.state_dict())
