"""Time of the training-free measures (norms, margins, bounds) on a CIFAR ResNet-20.

    python bench/norm_measures.py [--examples 1000] [--device cpu]

Random weights with non-trivial BatchNorm statistics, CIFAR-shaped random inputs; the time covers
BatchNorm folding, tracing the layers, 20 operator spectral norms by power iteration at their real
input sizes, Frobenius and (2,1) norms, the path norm, the margins on the inputs, and the bounds.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from effcap.capacity.measures.bounds import norm_bounds
from effcap.capacity.measures.norms import norm_measures
from effcap.capacity.models import build_model, parse_architecture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    spec = parse_architecture({"family": "resnet20", "input_shape": [3, 32, 32], "num_classes": 10})
    model = build_model(spec, seed=0, device=device)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 2)
    x = torch.randn(args.examples, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.examples,), device=device)
    started = time.perf_counter()
    measures = norm_measures(model, (3, 32, 32), x, y)
    bounds = norm_bounds(measures, 10, 0.05)
    seconds = time.perf_counter() - started
    print(f"ResNet-20, {args.examples} examples on {device} ({torch.get_num_threads()} threads): {seconds:.2f} s for {len(measures.layers)} layers and {len(bounds)} bounds")


if __name__ == "__main__":
    main()
