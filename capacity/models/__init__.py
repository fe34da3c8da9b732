"""Model families: declarative specs and the torch modules built from them."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from effcap.capacity.errors import InputError
from effcap.capacity.graphs.network import GraphNetwork, GraphRunError, data_shapes
from effcap.capacity.graphs.rewrite import with_num_classes as graph_with_num_classes
from effcap.capacity.models.convnets import AlexNetSmall, LeNet5, SmallCNN
from effcap.capacity.models.inception import InceptionSmall
from effcap.capacity.models.mlp import MLP
from effcap.capacity.models.projection_resnet import ResNet
from effcap.capacity.models.resnet import CifarResNet
from effcap.capacity.models.spec import ArchitectureSpec, GraphSpec, MLPSpec
from effcap.capacity.models.spec import parse_architecture as _parse_spec
from effcap.capacity.models.vgg import VGG
from effcap.capacity.models.vit import VisionTransformer
from effcap.capacity.models.wide_resnet import WideResNet

__all__ = [
    "ArchitectureSpec",
    "MLPSpec",
    "build_model",
    "check_fits_dataset",
    "count_parameters",
    "parse_architecture",
    "with_num_classes",
]

MODULES: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "lenet5": LeNet5,
    "small_cnn": SmallCNN,
    "alexnet_small": AlexNetSmall,
    "inception_small": InceptionSmall,
    "resnet20": CifarResNet,
    "resnet": ResNet,
    "wide_resnet": WideResNet,
    "vgg": VGG,
    "vit": VisionTransformer,
    "graph": GraphNetwork,
}


# The attribute that carries a built module's spec (see _instantiate).
ARCHITECTURE_ATTRIBUTE = "effcap_architecture"


def _instantiate(spec: ArchitectureSpec) -> nn.Module:
    module = MODULES[spec.family](spec)
    # The spec travels with the module, so a network built here (and trained anywhere) can be written back as
    # safetensors + spec without its caller keeping the spec: that is how the notebook API audits a module.
    setattr(module, ARCHITECTURE_ATTRIBUTE, spec)
    return module


def parse_architecture(obj: object, field: str = "spec.architecture") -> ArchitectureSpec:
    """Validate an architecture description, including that its layers fit its input shape."""
    spec = _parse_spec(obj, field)
    if spec.family == "graph":
        _check_graph(spec, field)
        return spec
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zero-sized layers warn before they fail
            # In eval mode: shapes do not depend on it, and a training-mode BatchNorm refuses the one example
            # of this check where it normalises a 1x1 map (ResNet-18's last stage on 32x32 inputs).
            _instantiate(spec).eval()(torch.empty(1, *spec.input_shape))
    except (RuntimeError, ValueError) as error:
        raise InputError(f"{field}.input_shape", f"{list(spec.input_shape)} is too small or malformed for {spec.family}: {error}", reason="INVALID_SPEC") from None
    return spec


def _check_graph(spec: GraphSpec, field: str) -> None:
    """A graph must build, run on its input shape (on the meta device) and give (batch, num_classes) logits."""
    try:
        with torch.device("meta"):
            shapes = data_shapes(GraphNetwork(spec))
    except GraphRunError as error:
        raise InputError(f"{field}.nodes[{error.index}]", str(error), reason="INVALID_SPEC") from None
    except ValueError as error:
        raise InputError(field, str(error), reason="INVALID_SPEC") from None
    if shapes.get(spec.output) != (2, spec.num_classes):
        shape = list(shapes.get(spec.output, ()))
        needed = f"logits (batch, {spec.num_classes}) are needed"
        raise InputError(f"{field}.output", f"has shape {shape} for a batch of 2; {needed}", reason="INVALID_SPEC")


def build_model(spec: ArchitectureSpec, *, seed: int | None = None, device: torch.device | str = "cpu") -> nn.Module:
    """A freshly initialised module for `spec` (the family's default init).

    Weights are always drawn on the CPU, from a private RNG stream when `seed` is given, so a
    trial's initialisation is the same on every device and never disturbs the caller's global
    RNG. On the meta device nothing is allocated: that is how checkpoints are checked cheaply.
    """
    if torch.device(device).type == "meta":
        with torch.device("meta"):
            return _instantiate(spec)
    if seed is None:
        return _instantiate(spec).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _instantiate(spec).to(device)


def with_num_classes(spec: ArchitectureSpec, num_classes: int) -> ArchitectureSpec:
    """The same architecture with `num_classes` logits (a built-in family's head, or a graph's head layer)."""
    if isinstance(spec, GraphSpec):
        return graph_with_num_classes(spec, num_classes)
    return spec.model_copy(update={"num_classes": num_classes})


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_fits_dataset(spec: ArchitectureSpec, input_shape: tuple[int, ...], num_classes: int) -> None:
    """The architecture must take the dataset's inputs and have a logit for every class.

    An MLP flattens its input, so a flat input shape of the same size fits any example shape; every other
    family (an imported graph too) takes the examples as they are."""
    flattens = isinstance(spec, MLPSpec) and len(spec.input_shape) == 1
    if math.prod(spec.input_shape) != math.prod(input_shape) or (not flattens and tuple(spec.input_shape) != tuple(input_shape)):
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
