"""Zhang et al.'s small Inception fitting random labels: wall time for several seeds trained together.

    python bench/inception_random_labels.py [--examples 50000] [--seeds 8] [--device cuda] [--time-limit 480]

The issue's goal: 50,000 CIFAR-shaped examples (3x28x28, the paper's crops), random labels, 8 seeds,
100% train accuracy in under 5 minutes on one H100/H200. No dataset is downloaded: the inputs are
standard Gaussian images (the paper's "Gaussian" condition, which it fits about as fast as random
labels on real images) and every seed draws its own labels. SGD as in the paper's appendix for the
Inception (learning rate 0.1, momentum 0.9, decay 0.95 per epoch, batch 128). Prints each epoch's
train accuracy per seed, the strategy the engine chose, and the time until every seed fitted, or
where the seeds stood when the time limit or the epoch budget ran out.
"""

from __future__ import annotations

import argparse
import time

import torch

from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.strategy import EngineOptions, train_trials
from effcap.capacity.models import parse_architecture
from effcap.capacity.specs import TrainingSpec


class TimeLimit(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=480.0, help="seconds; stop and report where the seeds stand")
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    architecture = parse_architecture({"family": "inception_small", "input_shape": [3, 28, 28], "num_classes": 10, "batch_norm": args.batch_norm})
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.examples, 3, 28, 28, generator=generator).to(device)
    shared = SharedData(x, x[:1000], torch.randint(0, 10, (min(1000, args.examples),), generator=generator).to(device))
    trials = [TrialInputs(seed=s, y_train=torch.randint(0, 10, (args.examples,), generator=generator).to(device)) for s in range(args.seeds)]
    training = TrainingSpec(learning_rate=0.1, momentum=0.9, lr_decay_per_epoch=0.95, batch_size=128, max_epochs=args.max_epochs)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"small Inception (batch_norm={args.batch_norm}), {args.examples} Gaussian inputs, random labels, {args.seeds} seeds, {name}, torch {torch.__version__}", flush=True)
    started = time.perf_counter()

    def on_epoch(epoch: int, records: dict) -> None:
        elapsed = time.perf_counter() - started
        accuracies = " ".join(f"{records[i].train_accuracy:.3f}" for i in sorted(records))
        print(f"epoch {epoch:3d}  {elapsed:7.1f} s  active seeds' train accuracy: {accuracies}", flush=True)
        if elapsed > args.time_limit:
            raise TimeLimit

    try:
        outcomes, strategy = train_trials(architecture, shared, trials, training, options=EngineOptions(max_trials_per_batch=args.seeds), on_epoch=on_epoch)
    except TimeLimit:
        print(f"time limit of {args.time_limit:.0f} s reached before every seed fitted")
        return
    seconds = time.perf_counter() - started
    fitted = [o for o in outcomes if o.fitted]
    print(f"strategy {strategy}: {len(fitted)}/{len(outcomes)} seeds at 100% train accuracy; all done in {seconds:.1f} s")
    for seed, outcome in enumerate(outcomes):
        when = f"fitted after {outcome.epochs_to_fit} epochs, at {outcome.seconds_to_fit:.1f} s" if outcome.fitted else "not fitted"
        print(f"  seed {seed}: train accuracy {outcome.train_accuracy:.4f}, {when}")


if __name__ == "__main__":
    main()
