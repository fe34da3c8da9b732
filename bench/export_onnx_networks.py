"""Write the narrow reference networks bench/RESULTS.md measures in the engine as ONNX files, exported as the docs say.

    python bench/export_onnx_networks.py OUT_DIR

Writes resnet18_w4.onnx, resnet18_w8.onnx (ResNet-18, widths 4 and 8) and vit_p2_d16.onnx (a 2-block ViT) for
1x8x8 inputs, from tests/onnx_networks.py, for `bench/engine_throughput.py --onnx`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the reference networks live with the tests

from tests.onnx_networks import ResNet, ViT, export_onnx  # noqa: E402

NETWORKS = {
    "resnet18_w4": lambda: ResNet((2, 2, 2, 2), width=4, in_channels=1),
    "resnet18_w8": lambda: ResNet((2, 2, 2, 2), width=8, in_channels=1),
    "vit_p2_d16": lambda: ViT(image=8, patch=2, dim=16, depth=2, heads=2, in_channels=1),
}

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in NETWORKS.items():
        torch.manual_seed(0)
        print(export_onnx(make(), (1, 8, 8), folder / f"{name}.onnx"))
