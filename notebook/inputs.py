"""Turning what a notebook holds (an nn.Module, arrays) into the files an audit takes (a checkpoint, a dataset).

A module built from one of the families (it carries its spec, capacity/models) is written as safetensors with
the spec embedded, exactly as `save_checkpoint` writes checkpoints; any other module is exported to ONNX the
one documented way (capacity/graphs/export_call.py), so the server translates it from data, never runs it.
Arrays become an .npz with the documented keys. Paths and `builtin:` names pass through untouched.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from effcap.clients.errors import EffcapError

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def model_file(model: Any, work_dir: Path, data: str | None) -> Path:
    """A path stays a path; a module is written into `work_dir` as safetensors + spec, or as ONNX."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise EffcapError(f"model: {path}: no such file", "INVALID_ARGUMENT", field="model")
        return path
    from torch import nn

    if not isinstance(model, nn.Module):
        raise EffcapError(
            f"model: expected a path or a torch.nn.Module, got {type(model).__name__}",
            "INVALID_ARGUMENT",
            field="model",
        )
    from effcap.capacity.checkpoint import save_checkpoint
    from effcap.capacity.models import ARCHITECTURE_ATTRIBUTE

    spec = getattr(model, ARCHITECTURE_ATTRIBUTE, None)
    if spec is not None:
        path = work_dir / "model.safetensors"
        save_checkpoint(path, spec, model.state_dict())
        return path
    if data is None:
        message = f"model: exporting a {type(model).__name__} to ONNX needs an example's shape: pass data"
        raise EffcapError(message, "INVALID_ARGUMENT", field="data")
    return export_onnx(model, input_shape(data), work_dir / "model.onnx")


def export_onnx(model: Any, shape: tuple[int, ...], path: Path) -> Path:
    """The documented export (training mode keeps BatchNorm a layer; a symbolic batch axis), of a copy.

    Tracing in training mode runs one forward pass that moves every BatchNorm's running statistics towards a
    random batch; the graph would carry those instead of the model's, so they are written back afterwards.
    """
    import onnx
    import torch
    from onnx import numpy_helper

    exported = copy.deepcopy(model).cpu().float()
    buffers = {name: value.clone() for name, value in exported.named_buffers()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                exported,
                torch.randn(2, *shape),
                str(path),
                dynamo=False,
                training=torch.onnx.TrainingMode.TRAINING,
                input_names=["input"],
                dynamic_axes={"input": {0: "batch"}},
            )
    except Exception as error:  # noqa: BLE001 - any exporter failure is the user's model, said as such
        message = f"model: torch.onnx.export failed for {type(model).__name__}: {type(error).__name__}: {error}"
        raise EffcapError(message[:2000], "INVALID_ARGUMENT", field="model") from None
    moved = {name for name, value in exported.named_buffers() if not torch.equal(value, buffers[name])}
    graph = onnx.load(str(path))
    for initializer in graph.graph.initializer:
        if initializer.name in moved:
            initializer.CopyFrom(numpy_helper.from_array(buffers[initializer.name].numpy(), initializer.name))
            moved.discard(initializer.name)
    statistics = sorted(name for name in moved if not name.endswith("num_batches_tracked"))
    if statistics:
        raise EffcapError(f"model: the ONNX export moved {statistics[:4]} and they are not in the graph", "INTERNAL")
    onnx.save(graph, str(path))
    return path


def input_shape(data: str) -> tuple[int, ...]:
    """One example's shape, for exporting a module: read from the dataset (its loader validates it)."""
    from effcap.capacity.data.datasets import builtin_dataset, load_dataset_file
    from effcap.capacity.errors import InputError

    try:
        dataset = (
            builtin_dataset(data.removeprefix("builtin:"))
            if data.startswith("builtin:")
            else load_dataset_file(data, data)
        )
    except InputError as error:
        raise EffcapError(f"INVALID_ARGUMENT: {error}", "INVALID_ARGUMENT", error.reason, error.field) from None
    return tuple(dataset.input_shape)


def dataset_source(data: Any, work_dir: Path) -> str:
    """ "builtin:NAME" or a file path as given; arrays (x_train, y_train[, x_test, y_test]) written to an .npz."""
    if isinstance(data, Path) or (isinstance(data, str) and not data.startswith("builtin:")):
        if not Path(data).is_file():
            raise EffcapError(f"data: {data}: no such file", "INVALID_ARGUMENT", field="data")
        return str(data)
    if isinstance(data, str):
        return data
    arrays = _named_arrays(data)
    import numpy as np

    path = work_dir / "data.npz"
    np.savez(path, **{name: _numpy(value, name) for name, value in arrays.items()})
    return str(path)


def _named_arrays(data: Any) -> dict[str, Any]:
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - set(ARRAY_KEYS) - {"num_classes"})
        if unknown or not {"x_train", "y_train"} <= set(data):
            raise EffcapError(
                "data: a mapping needs x_train and y_train (optionally x_test, y_test, num_classes); "
                f"got {sorted(data)}",
                "INVALID_ARGUMENT",
                field="data",
            )
        return dict(data)
    if isinstance(data, Sequence) and len(data) in (2, 4):
        return dict(zip(ARRAY_KEYS, data))
    raise EffcapError(
        "data: give 'builtin:NAME', a .npz/.safetensors path, (x_train, y_train[, x_test, y_test]) or a dict of them; "
        f"got {type(data).__name__}",
        "INVALID_ARGUMENT",
        field="data",
    )


def _numpy(value: Any, name: str) -> Any:
    """numpy as is; torch tensors (any device) through .numpy(); the dataset loader checks dtypes and shapes."""
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype == object:
        raise EffcapError(
            f"data.{name}: an array of Python objects cannot be audited", "INVALID_ARGUMENT", field=f"data.{name}"
        )
    return array
