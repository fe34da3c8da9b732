"""How long the data-free `weights` analysis takes, per family, and what the CLI adds around it.

    python bench/weight_spectra.py [--repeats 3]

For each built-in family at its usual CIFAR/MNIST size (freshly initialised weights: the time depends on
the shapes, not the values) it times `run_weights` in this process (build, load, one SVD per matrix, the
power-law fits) and reports the layers, matrices and eigenvalues handled. Then it times the whole command
`effcap audit CHECKPOINT --analyses weights --local --json` (interpreter start, torch import, checkpoint
load and checks, report) for the largest network, and `import mlflow` in a fresh interpreter (the cost
`--mlflow` adds before any logging).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _variable, _value in {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}.items():
    os.environ.setdefault(_variable, _value)

import torch  # noqa: E402

from effcap.capacity.analyses.weights import run_weights  # noqa: E402
from effcap.capacity.checkpoint import save_checkpoint  # noqa: E402
from effcap.capacity.models import build_model, count_parameters, parse_architecture  # noqa: E402

CIFAR = [3, 32, 32]
FAMILIES = {
    "mlp 3x512 (MNIST)": {
        "family": "mlp",
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "hidden_sizes": [512, 512, 512],
    },
    "lenet5": {"family": "lenet5", "input_shape": [1, 28, 28], "num_classes": 10},
    "resnet20": {"family": "resnet20", "input_shape": CIFAR, "num_classes": 10},
    "resnet18 (CIFAR stem)": {"family": "resnet", "input_shape": CIFAR, "num_classes": 10},
    "vgg11-bn": {"family": "vgg", "input_shape": CIFAR, "num_classes": 10, "config": "11"},
    "wide_resnet 28-10": {"family": "wide_resnet", "input_shape": CIFAR, "num_classes": 10},
    "vit (dim 192, depth 12, patch 4)": {"family": "vit", "input_shape": CIFAR, "num_classes": 10, "patch_size": 4},
}


def _time(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print("| network | parameters | layers | matrices | eigenvalues | fitted | run_weights s (best of n) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    largest = None
    for name, raw in FAMILIES.items():
        spec = parse_architecture(raw)
        state = build_model(spec, seed=0).state_dict()
        result = run_weights(spec, state)
        seconds = _time(lambda spec=spec, state=state: run_weights(spec, state), args.repeats)
        parameters = count_parameters(build_model(spec, device="meta"))
        matrices = sum(layer.matrices for layer in result.layers)
        eigenvalues = sum(layer.spectrum.eigenvalues for layer in result.layers)
        print(
            f"| {name} | {parameters:,} | {len(result.layers)} | {matrices} | {eigenvalues:,} | {len(result.fitted)} | {seconds:.2f} |"
        )
        if largest is None or parameters > largest[0]:
            largest = (parameters, name, spec, state)
    _, name, spec, state = largest
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.safetensors"
        save_checkpoint(path, spec, state)
        command = [
            sys.executable,
            "-m",
            "effcap.clients.cli",
            "audit",
            str(path),
            "--analyses",
            "weights",
            "--local",
            "--json",
        ]
        seconds = _time(lambda: subprocess.run(command, check=True, capture_output=True), args.repeats)
    print(
        f"\n`effcap audit` ({name}) --analyses weights --local, whole command: {seconds:.1f} s (best of {args.repeats})"
    )
    imports = _time(lambda: subprocess.run([sys.executable, "-c", "import mlflow"], check=True), args.repeats)
    print(f"`import mlflow` (mlflow-skinny) in a fresh interpreter: {imports:.2f} s (best of {args.repeats})")


if __name__ == "__main__":
    main()
