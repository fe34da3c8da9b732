"""A 20-level pruning sweep on a CIFAR ResNet-20: stacked variants against one level at a time.

    python bench/compression_sweep.py [--examples 10000] [--device cpu]

All evaluate the same 20 global-magnitude sparsities on the same inputs, measured in the same run:
the reference copies the model per level, loads the pruned weights and runs it (what a loop over
torch.nn.utils.prune would do); the engine evaluates the variants stacked (vmap) and one by one
(functional_call), and marks the one it picks by itself. Prints seconds and checks that the
accuracies agree. Then structured pruning: the physically smaller ResNets' parameters, multiply-adds
and measured forward time against the dense network's.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from effcap.capacity.analyses.compressibility import forward_seconds
from effcap.capacity.compression.evaluate import EXAMPLES_PER_PASS, evaluate_variants, stack_variants
from effcap.capacity.compression.methods import global_magnitude, prunable_weights
from effcap.capacity.compression.structured import structured_prune
from effcap.capacity.models import build_model, count_parameters, parse_architecture
from effcap.capacity.models.flops import multiply_adds


@torch.no_grad()
def one_level_at_a_time(model, variants, x, y) -> list[float]:
    accuracies = []
    for variant in variants:
        pruned = copy.deepcopy(model)
        state = pruned.state_dict()
        state.update(variant)
        pruned.load_state_dict(state)
        correct = sum(int((pruned(x[i : i + EXAMPLES_PER_PASS]).argmax(1) == y[i : i + EXAMPLES_PER_PASS]).sum()) for i in range(0, len(x), EXAMPLES_PER_PASS))
        accuracies.append(correct / len(x))
    return accuracies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    spec = parse_architecture({"family": "resnet20", "input_shape": [3, 32, 32], "num_classes": 10})
    model = build_model(spec, seed=0, device=device).eval()
    x = torch.randn(args.examples, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.examples,), device=device)
    levels = np.linspace(0.0, 0.95, 20)
    weights = prunable_weights(model)
    variants = [global_magnitude(weights, float(s)) for s in levels]
    started = time.perf_counter()
    reference = one_level_at_a_time(model, variants, x, y)
    reference_s = time.perf_counter() - started
    print(f"ResNet-20, 20 sparsity levels, {args.examples} examples on {device} ({torch.get_num_threads()} threads):")
    print(f"  reference, one deep-copied model per level: {reference_s:.1f} s")
    auto = stack_variants(model, (3, 32, 32), device)
    for stacked in (True, False):
        started = time.perf_counter()
        accuracies = [accuracy for accuracy, _ in evaluate_variants(model, variants, x, y, stacked=stacked)]
        seconds = time.perf_counter() - started
        assert np.allclose(reference, accuracies, atol=2 / args.examples), (reference, accuracies)
        label = "stacked variants (vmap)" if stacked else "variants one by one, weights written in place"
        print(f"  {label}{' [auto]' if stacked == auto else ''}: {seconds:.1f} s, {reference_s / seconds:.2f}x the reference; accuracies agree")
    structured(spec, model, x)


def structured(spec, model: torch.nn.Module, x: torch.Tensor) -> None:
    dense_s, dense_macs = forward_seconds(model, x), multiply_adds(model, spec.input_shape)
    print(f"  structured pruning (channels removed, residual streams included); dense forward {dense_s:.2f} s:")
    for fraction in (0.25, 0.5, 0.75):
        pruned = structured_prune(spec, model.state_dict(), fraction)
        small = build_model(pruned.spec, device=x.device).eval()
        small.load_state_dict(pruned.state)
        seconds = forward_seconds(small, x)
        print(
            f"    {fraction:.0%} of units removed: {count_parameters(small):,} of {count_parameters(model):,} parameters, "
            f"{dense_macs / multiply_adds(small, spec.input_shape):.2f}x fewer multiply-adds, forward {seconds:.2f} s ({dense_s / seconds:.2f}x faster)"
        )


if __name__ == "__main__":
    main()
