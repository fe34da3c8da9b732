"""ONNX round trips of the literature's networks: export in training mode, import, compare with torch and onnxruntime.

Each network is written in plain torch (tests/onnx_networks.py), exported as the docs say, imported
(which checks every intermediate value against onnxruntime) and compared with the torch module it
came from: logits in inference mode, logits and every gradient in training mode (BatchNorm on batch
statistics), parameter count, BatchNorm kept as layers, and a fresh initialisation drawn exactly as
the torch module draws its own.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from effcap.capacity.checkpoint import load_checkpoint
from effcap.capacity.models import build_model, count_parameters

from ..onnx_networks import VGG, MobileNetLike, ResNet, ViT, WideResNet, export_onnx, randomize_batchnorm

NETWORKS = {
    "resnet18-cifar": (lambda: ResNet((2, 2, 2, 2), width=8), (3, 32, 32)),
    "resnet18-imagenet-stem": (lambda: ResNet((2, 2, 2, 2), width=8, stem="imagenet"), (3, 32, 32)),
    "resnet34": (lambda: ResNet((3, 4, 6, 3), width=4), (3, 16, 16)),
    "vgg11-bn": (lambda: VGG(11, batch_norm=True, divisor=16), (3, 32, 32)),
    "vgg16": (lambda: VGG(16, batch_norm=False, divisor=16), (3, 32, 32)),
    "vgg16-bn": (lambda: VGG(16, batch_norm=True, divisor=16), (3, 32, 32)),
    "wrn-28-2": (lambda: WideResNet(28, 2, width=4), (3, 16, 16)),
    "vit": (lambda: ViT(image=16, patch=4, dim=32, depth=2, heads=2), (3, 16, 16)),
    "mobilenet": (lambda: MobileNetLike(width=8), (3, 16, 16)),
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """name -> (torch module, input shape, checkpoint imported from its ONNX export); made once per module."""
    root = tmp_path_factory.mktemp("onnx")
    cache = {}

    def get(name):
        if name not in cache:
            make, shape = NETWORKS[name]
            torch.manual_seed(0)
            module = randomize_batchnorm(make())
            checkpoint = load_checkpoint(export_onnx(module, shape, root / f"{name}.onnx"))
            cache[name] = module, shape, checkpoint
        return cache[name]

    return get


def _network(checkpoint):
    network = build_model(checkpoint.architecture)
    network.load_state_dict(checkpoint.state_dict)
    return network


@pytest.mark.parametrize("name", list(NETWORKS))
def test_imported_networks_compute_what_torch_and_onnxruntime_compute(name, imported):
    module, shape, checkpoint = imported(name)
    network = _network(checkpoint)
    verification = checkpoint.onnx.verification
    assert verification.evaluator.startswith("onnxruntime") and verification.values_compared > 10
    assert verification.max_scaled_difference < 1e-4 and verification.max_abs_difference < 1e-4
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
    module.eval(), network.eval()
    with torch.no_grad():
        torch.testing.assert_close(network(x), module(x), rtol=1e-4, atol=1e-5)
    assert count_parameters(network) == count_parameters(module)
    batch_norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len([m for m in network.modules() if isinstance(m, nn.BatchNorm2d)]) == len(batch_norms)


@pytest.mark.parametrize("name", ["resnet18-cifar", "wrn-28-2", "vit", "vgg11-bn"])
def test_imported_networks_train_like_torch_every_gradient_included(name, imported):
    """Training mode (BatchNorm on batch statistics): the same loss and the same gradient for every weight,
    matched by value since MatMul weights are stored transposed under other names."""
    module, shape, checkpoint = imported(name)
    network = _network(checkpoint)
    module.train(), network.train()
    x = torch.randn(6, *shape, generator=torch.Generator().manual_seed(2))
    y = torch.arange(6) % 10
    ours = torch.autograd.grad(F.cross_entropy(network(x), y), list(network.parameters()))
    theirs = torch.autograd.grad(F.cross_entropy(module(x), y), list(module.parameters()))
    assert sorted(g.norm().item() for g in ours) == pytest.approx(
        sorted(g.norm().item() for g in theirs), rel=1e-4, abs=1e-7
    )


def test_a_fresh_imported_resnet_is_drawn_exactly_as_a_fresh_torch_resnet(imported):
    """PyTorch's default initialisation per layer type, drawn in the same order: the same seed gives the same
    network."""
    _, _, checkpoint = imported("resnet18-cifar")
    torch.manual_seed(7)
    reference = ResNet((2, 2, 2, 2), width=8).state_dict()
    fresh = build_model(checkpoint.architecture, seed=7).state_dict()
    assert set(fresh) == set(reference)
    for key, value in reference.items():
        torch.testing.assert_close(fresh[key], value, rtol=0, atol=0, msg=key)


def test_the_vit_keeps_its_matmul_weights_and_embeddings_trainable(imported):
    _, _, checkpoint = imported("vit")
    network = _network(checkpoint)
    trainable = dict(network.named_parameters())
    assert {"cls_token", "pos_embed"} <= set(trainable)
    # Two blocks of qkv, proj, fc1 and fc2 (MatMul + bias Add, each one Linear), and the head (Gemm).
    assert sum(isinstance(m, nn.Linear) for m in network.modules()) == 2 * 4 + 1
    assert sum(isinstance(m, nn.LayerNorm) for m in network.modules()) == 2 * 2 + 1
