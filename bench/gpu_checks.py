"""Correctness on a GPU before its benchmarks are believed: the checks CI cannot run.

    python bench/gpu_checks.py [--device cuda]

1. The three training strategies agree on CUDA (a small CNN with BatchNorm, 3 trials, 3 epochs).
   The stacking strategies run under bf16 autocast and the sequential one in fp32, so train losses
   are compared at 5% and train accuracies at 5 points, not at float tolerance.
2. The strategy probe times both stacking strategies on the device and names the faster; every
   family folded channels-last computes, in float64, exactly what each trial's own network does.
3. Structured pruning of a ResNet with dead units, scored on the GPU, computes the dense network's outputs.
4. Compression variants evaluated stacked and one by one give the same accuracies on the GPU.
Exits non-zero on the first failed check.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.func import stack_module_state

from effcap.capacity.compression.evaluate import evaluate_variants
from effcap.capacity.compression.methods import global_magnitude, prunable_weights
from effcap.capacity.compression.structured import structured_prune
from effcap.capacity.engine.batched import SharedData, TrialInputs
from effcap.capacity.engine.grouped import grouped_forward
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


def folded_networks_are_exact(device: torch.device) -> None:
    """Every family folded channels-last on the GPU computes each trial's own network (float64)."""
    families = {
        "lenet5": {"family": "lenet5", "input_shape": [1, 12, 12], "conv_channels": [4, 6], "fc_sizes": [16, 12]},
        "alexnet_small": {"family": "alexnet_small", "input_shape": [3, 8, 8], "conv_channels": [12, 10], "fc_sizes": [16, 12], "batch_norm": True},
        "inception_small": {"family": "inception_small", "input_shape": [3, 12, 12], "conv_widths": [4, 3, 2, 2, 3, 3, 2, 2, 3, 2, 2, 3, 2, 2, 3, 2, 3, 3, 2]},
        "resnet20": {"family": "resnet20", "input_shape": [3, 8, 8], "blocks_per_stage": 2, "stage_widths": [4, 3, 5], "shortcut_sources": [[2, -1, 0], [-1, 1, 1, 0, 2]]},
        "vgg": {"family": "vgg", "input_shape": [3, 8, 8], "config": [4, "M", 6, 6, "M", 8]},
        "resnet": {"family": "resnet", "input_shape": [3, 16, 16], "stem": "imagenet", "blocks_per_stage": [1, 1], "width": 3},
        "wide_resnet": {"family": "wide_resnet", "input_shape": [3, 8, 8], "depth": 10, "widen_factor": 2, "stage_widths": [4, 5, 6]},
    }
    for name, arch in families.items():
        spec = parse_architecture({**arch, "num_classes": 10})
        models = [build_model(spec, seed=i).double().to(device).train() for i in range(3)]
        params, buffers = stack_module_state(models)
        params = {n: p.detach() for n, p in params.items()}
        x = torch.randn(3, 8, *spec.input_shape, dtype=torch.float64, device=device)
        folded = grouped_forward(spec, channels_last=True)(params, buffers, x, True, False)
        with torch.no_grad():
            alone = torch.stack([m(x[i]) for i, m in enumerate(models)])
        difference = float((folded - alone).abs().max())
        check(difference < 1e-9, f"{name} folded channels-last on {device} = its trials' own networks: max |Δ| = {difference:.1e}")


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
    folded_networks_are_exact(device)
    structured_pruning_is_exact(device)
    stacked_variants_agree(device)


if __name__ == "__main__":
    main()
