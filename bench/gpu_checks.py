"""Correctness on a GPU before its benchmarks are believed: the checks CI cannot run.

    python bench/gpu_checks.py [--device cuda]

1. The three training strategies agree on CUDA (a small CNN with BatchNorm, 3 trials, 3 epochs).
   The stacking strategies run under bf16 autocast and the sequential one in fp32, so train losses
   are compared at 5% and train accuracies at 5 points, not at float tolerance.
2. The strategy probe times both stacking strategies on the device and names the faster.
3. Structured pruning of a ResNet with dead units, scored on the GPU, computes the dense network's outputs.
4. Compression variants evaluated stacked and one by one give the same accuracies on the GPU.
Exits non-zero on the first failed check.
"""

from __future__ import annotations

import argparse
import sys

import torch

from effcap.capacity.compression.evaluate import evaluate_variants
from effcap.capacity.compression.methods import global_magnitude, prunable_weights
from effcap.capacity.compression.structured import structured_prune
from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.strategy import EngineOptions, measure_strategy, train_trials
from effcap.capacity.models import build_model, parse_architecture
from effcap.capacity.specs import TrainingSpec


def check(condition: bool, message: str) -> None:
    print(("ok    " if condition else "FAIL  ") + message, flush=True)
    if not condition:
        sys.exit(1)


def strategies_agree(device: torch.device) -> None:
    architecture = parse_architecture({"family": "small_cnn", "input_shape": [3, 16, 16], "channels": [16, 32], "batch_norm": True, "num_classes": 10})
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 3, 16, 16, generator=generator).to(device)
    shared = SharedData(x, x[:128], torch.randint(0, 10, (128,), generator=generator).to(device))
    trials = [TrialInputs(seed=s, y_train=torch.randint(0, 10, (512,), generator=generator).to(device)) for s in range(3)]
    training = TrainingSpec(learning_rate=0.05, batch_size=64, max_epochs=3, lr_decay_per_epoch=1.0)
    runs = {s: train_trials(architecture, shared, trials, training, options=EngineOptions(strategy=s))[0] for s in ("vmap", "grouped", "sequential")}
    for strategy in ("grouped", "sequential"):
        for a, b in zip(runs[strategy], runs["vmap"]):
            loss_a, loss_b = a.curve[-1].train_loss, b.curve[-1].train_loss
            check(abs(loss_a - loss_b) <= 0.05 * abs(loss_b) and abs(a.train_accuracy - b.train_accuracy) <= 0.05, f"{strategy} vs vmap: loss {loss_a:.4f} / {loss_b:.4f}")
    best, seconds = measure_strategy(architecture, shared, trials, training)
    check(best in seconds and all(s > 0 for s in seconds.values()), f"probe picks {best}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in seconds.items()))


def structured_pruning_is_exact(device: torch.device) -> None:
    spec = parse_architecture({"family": "resnet20", "input_shape": [3, 32, 32], "num_classes": 10})
    state = build_model(spec, seed=0).state_dict()
    # A quarter of every group dead: each block's first inner channels, and each stream's first
    # channels (in stages 2 and 3 those are option A's zero padding, so no shortcut refills them).
    for norm in ["stem.1", *(f"blocks.{b}.bn{i}" for b in range(9) for i in (1, 2))]:
        width = state[f"{norm}.weight"].numel()
        state[f"{norm}.weight"][: width // 4] = 0
        state[f"{norm}.bias"][: width // 4] = 0
    dense = build_model(spec).to(device).eval()
    dense.load_state_dict(state)
    pruned = structured_prune(spec, {k: v.to(device) for k, v in state.items()}, 0.25)  # scored where the weights live
    small = build_model(pruned.spec).to(device).eval()
    small.load_state_dict(pruned.state)
    x = torch.randn(256, 3, 32, 32, device=device)
    with torch.no_grad():
        difference = float((small(x) - dense(x)).abs().max())
    check(difference < 1e-3, f"ResNet-20 without its dead quarter (inner and residual-stream channels) computes the same: max |Δ| = {difference:.2e}")


def stacked_variants_agree(device: torch.device) -> None:
    spec = parse_architecture({"family": "resnet20", "input_shape": [3, 32, 32], "num_classes": 10})
    model = build_model(spec, seed=0, device=device).eval()
    x, y = torch.randn(1024, 3, 32, 32, device=device), torch.randint(0, 10, (1024,), device=device)
    variants = [global_magnitude(prunable_weights(model), s) for s in (0.0, 0.5, 0.9)]
    stacked = [a for a, _ in evaluate_variants(model, variants, x, y, stacked=True)]
    one_by_one = [a for a, _ in evaluate_variants(model, variants, x, y, stacked=False)]
    check(all(abs(a - b) <= 2 / len(x) for a, b in zip(stacked, one_by_one)), f"stacked and one-by-one sweep accuracies agree: {stacked} / {one_by_one}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(parser.parse_args().device)
    print(f"device {device}: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}")
    strategies_agree(device)
    structured_pruning_is_exact(device)
    stacked_variants_agree(device)


if __name__ == "__main__":
    main()
