"""The literature's networks at full size, exported to ONNX as the docs say, imported and checked.

    python bench/onnx_round_trips.py [--networks resnet18,vit_tiny,...]

For each network (plain torch, tests/onnx_networks.py): parameters, export and import times (the
import includes the node-by-node comparison with onnxruntime in a child process), the ONNX and
translated node counts, the largest difference of the logits from onnxruntime (the verification's
number, in the report as model.onnx.max_abs_difference) and from the torch module itself, on inputs
the verification did not use. Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the reference networks live with the tests

from effcap.capacity.checkpoint import load_checkpoint  # noqa: E402
from effcap.capacity.models import build_model, count_parameters  # noqa: E402
from tests.onnx_networks import VGG, MobileNetLike, ResNet, ViT, WideResNet, export_onnx, randomize_batchnorm  # noqa: E402

NETWORKS = {
    "resnet18_cifar": (lambda: ResNet((2, 2, 2, 2)), (3, 32, 32)),
    "resnet18_imagenet": (lambda: ResNet((2, 2, 2, 2), stem="imagenet", classes=1000), (3, 224, 224)),
    "resnet34_imagenet": (lambda: ResNet((3, 4, 6, 3), stem="imagenet", classes=1000), (3, 224, 224)),
    "vgg11_bn": (lambda: VGG(11, batch_norm=True), (3, 32, 32)),
    "vgg16": (lambda: VGG(16, batch_norm=False), (3, 32, 32)),
    "vgg16_bn": (lambda: VGG(16, batch_norm=True), (3, 32, 32)),
    "wrn28_10": (lambda: WideResNet(28, 10), (3, 32, 32)),
    "vit_tiny": (lambda: ViT(image=224, patch=16, dim=192, depth=12, heads=3, classes=1000), (3, 224, 224)),
    "mobilenet": (lambda: MobileNetLike(width=32), (3, 32, 32)),
}


def round_trip(name: str, folder: Path) -> dict:
    make, shape = NETWORKS[name]
    torch.manual_seed(0)
    module = randomize_batchnorm(make()).eval()
    started = time.perf_counter()
    path = export_onnx(module, shape, folder / f"{name}.onnx")
    exported = time.perf_counter()
    checkpoint = load_checkpoint(path)
    imported = time.perf_counter()
    network = build_model(checkpoint.architecture)
    network.load_state_dict(checkpoint.state_dict)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        from_torch = float((network.eval()(x) - module(x)).abs().max())
    check = checkpoint.onnx.verification
    spec = checkpoint.architecture
    return {
        "network": name,
        "parameters": f"{count_parameters(network):,}",
        "onnx nodes": checkpoint.onnx.onnx_nodes,
        "graph nodes (layers)": f"{len(spec.nodes)} ({sum(n.layer is not None for n in spec.nodes)})",
        "export s": f"{exported - started:.1f}",
        "import + verify s": f"{imported - exported:.1f}",
        "values compared": check.values_compared,
        "max abs Δ logits vs onnxruntime": f"{check.max_abs_difference:.1e}",
        "max scaled Δ, any value": f"{check.max_scaled_difference:.1e}",
        "max abs Δ logits vs torch": f"{from_torch:.1e}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=",".join(NETWORKS), help=f"comma-separated, of {', '.join(NETWORKS)}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [round_trip(name, Path(folder)) for name in args.networks.split(",")]
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + " --- |" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
