"""Zhang et al.'s randomization test on imported ONNX networks: true against random digits labels.

    python bench/onnx_random_labels.py [--train 400] [--epochs 300]

Narrow ResNets (plain torch, tests/onnx_networks.py) are exported as the docs say, imported (checked
against onnxruntime) and audited by the randomization analysis on the first `--train` digits (test: 300
others), SGD lr 0.1 without decay, batches of 64, one seed per condition: the imported network must
memorise random labels (100% train accuracy, chance on test) as the built-in families do. Prints a
Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the reference networks live with the tests

from effcap.capacity.analyses.randomization import run_randomization_test  # noqa: E402
from effcap.capacity.checkpoint import load_checkpoint  # noqa: E402
from effcap.capacity.data.datasets import digits  # noqa: E402
from effcap.capacity.models import (
    build_model,  # noqa: E402
    count_parameters,  # noqa: E402
)
from effcap.capacity.specs import Condition, ConditionKind, RandomizationSpec, TrainingSpec  # noqa: E402
from tests.onnx_networks import ResNet, export_onnx  # noqa: E402

NETWORKS = {
    "resnet-2-stage-w16": lambda: ResNet((1, 1), width=16, in_channels=1),
    "resnet18-w8": lambda: ResNet((2, 2, 2, 2), width=8, in_channels=1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args()
    full = digits()
    data = dataclasses.replace(
        full,
        x_train=full.x_train[: args.train],
        y_train=full.y_train[: args.train],
        x_test=full.x_test[:300],
        y_test=full.y_test[:300],
    )
    training = TrainingSpec(learning_rate=0.1, lr_decay_per_epoch=1.0, batch_size=64, max_epochs=args.epochs)
    conditions = [Condition(kind=ConditionKind.TRUE_LABELS), Condition(kind=ConditionKind.RANDOM_LABELS)]
    spec = RandomizationSpec(conditions=conditions, seeds_per_condition=1, training=training)
    print("| network | parameters | strategy | condition | fitted | epochs to fit | train acc | test acc | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for name, make in NETWORKS.items():
            torch.manual_seed(0)
            checkpoint = load_checkpoint(export_onnx(make(), (1, 8, 8), Path(folder) / f"{name}.onnx"))
            parameters = count_parameters(build_model(checkpoint.architecture, device="meta"))
            started = time.perf_counter()
            result = run_randomization_test(checkpoint.architecture, data, spec, 0, torch.device("cpu"))
            seconds = time.perf_counter() - started
            for condition in result.conditions:
                trial = condition.trials[0].outcome
                label = condition.condition.kind.value
                epochs = trial.epochs_to_fit if trial.fitted else "—"
                print(
                    f"| {name} | {parameters:,} | {result.engine_strategy} | {label} | {trial.fitted} | {epochs} | "
                    f"{trial.train_accuracy:.3f} | {trial.test_accuracy:.3f} | {seconds:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
