"""Pruning-compressibility: accuracy against compression for several methods, the largest
compression within the tolerance, and the Occam bound that the shortest such code implies.

One-shot: the audit measures the trained function as it is. Variants of one method and level grid
are evaluated together (stacked weights, one pass); the sparsity at which accuracy crosses the
tolerance is refined by bisection. Every point carries its compression ratio (all parameters /
nonzero parameters), theoretical speedup (multiply-adds / nonzero multiply-adds, ShrinkBench) and
code length; the bound pays for every searched choice (method and level) in bits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from effcap.capacity.analyses.progress import AnalysisProgress
from effcap.capacity.compression import methods
from effcap.capacity.compression.evaluate import EXAMPLES_PER_PASS, evaluate_variants
from effcap.capacity.compression.finetune import finetune_masked
from effcap.capacity.compression.structured import structured_prune
from effcap.capacity.data.datasets import Dataset
from effcap.capacity.engine.device import synchronize
from effcap.capacity.measures.compression_bounds import (
    catoni_bound,
    entropy_code_bits,
    hoeffding_bound,
    kl_bound,
    log2_binomial,
)
from effcap.capacity.models import ArchitectureSpec, build_model, count_parameters
from effcap.capacity.models.flops import layer_multiply_adds
from effcap.capacity.seeding import derive_seed
from effcap.capacity.specs import CompressibilitySpec

FLOAT_BITS = 32
SPARSITY_METHODS = ("magnitude_global", "magnitude_layerwise", "random", "prune_quantize", "structured")
PRUNE_QUANTIZE_BITS = 8
FINETUNED_METHODS = ("magnitude_global", "magnitude_layerwise", "random")


@dataclass(frozen=True)
class CompressionPoint:
    method: str
    # Sparsity for pruning methods, bits for quantisation, retained energy for low rank.
    level: float
    accuracy: float
    loss: float
    train_accuracy: float
    train_loss: float
    nonzero_parameters: int
    compression_ratio: float
    speedup: float
    code_bits: float
    refined: bool = False
    measured_speedup: float = 0.0


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    sparsities: list[float]
    accuracies: list[float]
    # ∫ (baseline − accuracy) d(sparsity) over the grid (trapezoid): larger is more sensitive.
    integral: float


@dataclass(frozen=True)
class LayerRank:
    layer: str
    full_rank: int
    stable_rank: float
    effective_rank: float


@dataclass(frozen=True)
class OccamBound:
    method: str
    level: float
    code_bits: float
    hyperparameter_bits: float
    train_error: float
    n: int
    kl: float
    catoni: float
    hoeffding: float
    chance_error: float

    @property
    def vacuous(self) -> bool:
        return self.kl >= self.chance_error


@dataclass(frozen=True)
class CompressibilityResult:
    spec: CompressibilitySpec
    eval_split: str
    baseline_accuracy: float
    baseline_train_accuracy: float
    parameters: int
    points: list[CompressionPoint]
    # Per sparsity method: the largest sparsity within tolerance (s*) on the evaluation split, and on
    # the train split (the labels the model was fitted to: the effective-capacity signature is there).
    compressibility: dict[str, float]
    train_compressibility: dict[str, float]
    sensitivities: list[LayerSensitivity]
    bound: OccamBound | None
    n_from_spec: bool
    ranks: list[LayerRank]


class _Context:
    """The model, its data and its sizes, shared by every method."""

    def __init__(self, architecture: ArchitectureSpec, state: dict[str, torch.Tensor], dataset: Dataset, spec: CompressibilitySpec, device: torch.device) -> None:
        self.architecture, self.state, self.device = architecture, state, device
        self.model = build_model(architecture, device=device)
        self.model.load_state_dict(state)
        self.weights = methods.prunable_weights(self.model)
        self.parameters = count_parameters(self.model)
        self.other_parameters = self.parameters - sum(w.numel() for w in self.weights.values())
        macs = layer_multiply_adds(self.model, architecture.input_shape)
        self.macs = {f"{name}.weight": count for name, count in macs.items()}
        eval_x, eval_y = (dataset.x_test, dataset.y_test) if len(dataset.x_test) else (dataset.x_train, dataset.y_train)
        self.eval_split = "test" if len(dataset.x_test) else "train"
        limit = spec.max_eval_examples
        self.x_eval, self.y_eval = (torch.from_numpy(a[:limit]).to(device) for a in (eval_x, eval_y))
        self.x_train, self.y_train = (torch.from_numpy(a).to(device) for a in (dataset.x_train, dataset.y_train))

    def measure(self, variants: list[dict[str, torch.Tensor]]) -> list[tuple[float, float, float, float]]:
        """(eval accuracy, eval loss, train accuracy, train loss) per variant."""
        on_eval = evaluate_variants(self.model, variants, self.x_eval, self.y_eval)
        on_train = evaluate_variants(self.model, variants, self.x_train, self.y_train)
        return [(a, loss, t, train_loss) for (a, loss), (t, train_loss) in zip(on_eval, on_train)]

    def sizes(self, variant: dict[str, torch.Tensor]) -> tuple[int, float, float]:
        """(nonzero parameters, compression ratio, theoretical speedup) of a variant."""
        nonzero = self.other_parameters + sum(int((w != 0).sum()) for w in variant.values())
        dense_macs = sum(self.macs.values())
        # Work no weight stands for (attention's q kᵀ and softmax·v products) is not pruned away.
        unpruned_macs = sum(count for name, count in self.macs.items() if name not in variant)
        pruned_macs = sum(self.macs[name] * float((w != 0).float().mean()) for name, w in variant.items())
        sparse_macs = unpruned_macs + pruned_macs
        return nonzero, self.parameters / max(nonzero, 1), dense_macs / max(sparse_macs, 1e-12)


def run_compressibility(
    architecture: ArchitectureSpec,
    checkpoint_state: dict[str, torch.Tensor],
    dataset: Dataset,
    spec: CompressibilitySpec,
    audit_seed: int,
    device: torch.device,
    progress: AnalysisProgress | None = None,
) -> CompressibilityResult:
    progress = progress or AnalysisProgress()
    context = _Context(architecture, checkpoint_state, dataset, spec, device)
    [(baseline, _, baseline_train, _)] = context.measure([{}])
    points: list[CompressionPoint] = []
    compressibility: dict[str, float] = {}
    train_compressibility: dict[str, float] = {}
    for i, method in enumerate(spec.methods):
        progress.update(f"compressibility: {method}", i, len(spec.methods) + 1, i / (len(spec.methods) + 1))
        method_points = _sweep(method, context, spec, baseline, derive_seed(audit_seed, "compression", method))
        points.extend(method_points)
        if spec.finetune_steps and method in FINETUNED_METHODS:
            tuned = _finetune(method, context, spec, method_points, derive_seed(audit_seed, "finetune", method))
            points.extend(tuned)
            compressibility[f"{method}+finetune"] = max((p.level for p in tuned if p.accuracy >= baseline - spec.tolerance), default=0.0)
            train_compressibility[f"{method}+finetune"] = max((p.level for p in tuned if p.train_accuracy >= baseline_train - spec.tolerance), default=0.0)
        if method in SPARSITY_METHODS:
            compressibility[method] = max((p.level for p in method_points if p.accuracy >= baseline - spec.tolerance), default=0.0)
            train_compressibility[method] = max((p.level for p in method_points if p.train_accuracy >= baseline_train - spec.tolerance), default=0.0)
    sensitivities = []
    if spec.sensitivity:
        progress.update("compressibility: per-layer sensitivity", len(spec.methods), len(spec.methods) + 1, len(spec.methods) / (len(spec.methods) + 1))
        sensitivities = _sensitivities(context, spec, baseline)
    n = spec.train_set_size or len(dataset.x_train)
    bound = _best_bound(points, spec, n, dataset.num_classes, baseline)
    progress.update("compressibility: done", 1, 1, 1.0)
    ranks = [
        LayerRank(name.removesuffix(".weight"), min(w.shape[0], w[0].numel()), methods.stable_rank(w), methods.effective_rank(w))
        for name, w in context.weights.items()
    ]
    return CompressibilityResult(
        spec, context.eval_split, baseline, baseline_train, context.parameters, points, compressibility, train_compressibility, sensitivities, bound,
        spec.train_set_size is not None, ranks,
    )  # fmt: skip


def _sweep(method: str, context: _Context, spec: CompressibilitySpec, baseline: float, seed: int) -> list[CompressionPoint]:
    if method == "structured":
        return _sweep_structured(context, spec, baseline)
    if method == "quantization":
        levels = [float(b) for b in spec.quantization_bits]
    elif method == "low_rank":
        levels = list(spec.low_rank_energies)
    elif method == "low_rank_by_rank":
        levels = list(spec.low_rank_rank_fractions)
    else:
        levels = sorted(spec.sparsities)
    compress = _compressor(method, context, seed)
    points = _measure_levels(method, levels, compress, context)
    if method not in SPARSITY_METHODS:
        return points
    for _ in range(spec.bisection_steps):  # refine where accuracy crosses the tolerance
        ok = [p.level for p in points if p.accuracy >= baseline - spec.tolerance]
        failing = [p.level for p in points if p.accuracy < baseline - spec.tolerance and p.level > max(ok, default=0.0)]
        if not ok or not failing:
            break
        middle = (max(ok) + min(failing)) / 2
        points.extend(_measure_levels(method, [middle], compress, context, refined=True))
    return sorted(points, key=lambda p: p.level)


def _finetune(method: str, context: _Context, spec: CompressibilitySpec, one_shot: list[CompressionPoint], seed: int) -> list[CompressionPoint]:
    """Each one-shot level again after `finetune_steps` of SGD with the masks fixed."""
    compress = _compressor(method, context, seed)
    levels = [p.level for p in one_shot if p.level > 0]
    tuned = []
    for level in levels:
        variant, bits = compress(level)
        tuned.append((finetune_masked(context.model, variant, context.x_train, context.y_train, spec.finetune_steps, spec.finetune, seed), bits))
    measured = context.measure([variant for variant, _ in tuned])
    points = []
    for level, (variant, bits), (accuracy, loss, train_accuracy, train_loss) in zip(levels, tuned, measured):
        nonzero, ratio, speedup = context.sizes(variant)
        points.append(CompressionPoint(f"{method}+finetune", level, accuracy, loss, train_accuracy, train_loss, nonzero, ratio, speedup, bits))
    return points


def _sweep_structured(context: _Context, spec: CompressibilitySpec, baseline: float) -> list[CompressionPoint]:
    """Physically smaller networks, one per fraction of units removed (shapes differ: no stacking)."""
    dense_seconds = forward_seconds(context.model, context.x_eval)
    dense_macs = sum(context.macs.values())
    points = []
    for fraction in sorted(spec.sparsities):
        pruned = structured_prune(context.architecture, context.state, fraction)
        small = build_model(pruned.spec, device=context.device)
        small.load_state_dict(pruned.state)
        [(accuracy, loss)] = evaluate_variants(small, [{}], context.x_eval, context.y_eval)
        [(train_accuracy, train_loss)] = evaluate_variants(small, [{}], context.x_train, context.y_train)
        size = count_parameters(small)
        kept_bits = sum(log2_binomial(units, kept) for units, kept in pruned.group_sizes.values())
        points.append(
            CompressionPoint(
                "structured", fraction, accuracy, loss, train_accuracy, train_loss, size, context.parameters / size,
                dense_macs / sum(layer_multiply_adds(small, pruned.spec.input_shape).values()), FLOAT_BITS * size + kept_bits,
                measured_speedup=dense_seconds / forward_seconds(small, context.x_eval),
            )
        )  # fmt: skip
    return points


@torch.no_grad()
def forward_seconds(model: torch.nn.Module, x: torch.Tensor, repeats: int = 3) -> float:
    """Best of `repeats` timed passes over `x` (after one warm-up)."""
    model.eval()
    model(x[:EXAMPLES_PER_PASS])
    synchronize(x.device)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(x), EXAMPLES_PER_PASS):
            model(x[i : i + EXAMPLES_PER_PASS])
        synchronize(x.device)
        best = min(best, time.perf_counter() - started)
    return best


def _compressor(method: str, context: _Context, seed: int) -> Callable[[float], tuple[dict[str, torch.Tensor], float]]:
    """level -> (compressed weights, code length in bits)."""
    weights, total = context.weights, sum(w.numel() for w in context.weights.values())
    other_bits = FLOAT_BITS * context.other_parameters

    def pruned_bits(variant: dict[str, torch.Tensor], value_bits: float) -> float:
        kept = sum(int((w != 0).sum()) for w in variant.values())
        # The decoder must learn how many are kept (0..total) before it can read which: log2(total + 1) bits.
        return math.log2(total + 1) + log2_binomial(total, kept) + value_bits + other_bits

    def quantized_value_bits(variant: dict[str, torch.Tensor], bits: int, only_nonzero: bool) -> float:
        codes = methods.quantized_symbols(variant, bits)
        symbols = torch.cat([c.flatten()[variant[name].flatten() != 0] if only_nonzero else c.flatten() for name, c in codes.items()])
        scales = sum(w.shape[0] for w in variant.values())
        counts = torch.bincount(symbols - symbols.min()).tolist() if len(symbols) else []
        return entropy_code_bits(counts) + FLOAT_BITS * scales

    pruners = {
        "magnitude_global": methods.global_magnitude,
        "magnitude_layerwise": methods.layerwise_magnitude,
        "random": lambda w, level: methods.random_pruning(w, level, seed),
    }

    def compress(level: float) -> tuple[dict[str, torch.Tensor], float]:
        if method in pruners:
            v = pruners[method](weights, level)
            return v, pruned_bits(v, FLOAT_BITS * sum(int((w != 0).sum()) for w in v.values()))
        if method == "prune_quantize":
            pruned = methods.global_magnitude(weights, level)
            v = {k: w * (pruned[k] != 0) for k, w in methods.quantize_per_channel(pruned, PRUNE_QUANTIZE_BITS).items()}
            return v, pruned_bits(v, quantized_value_bits(v, PRUNE_QUANTIZE_BITS, only_nonzero=True))
        if method == "quantization":
            v = methods.quantize_per_channel(weights, int(level))
            return v, quantized_value_bits(weights, int(level), only_nonzero=False) + other_bits
        v, ranks = (methods.low_rank if method == "low_rank" else methods.low_rank_by_rank)(weights, level)
        factors = FLOAT_BITS * sum(r * (w.shape[0] + w[0].numel()) for w, r in zip(weights.values(), ranks.values()))
        # Each rank (0..min dimension) is sent first, or the factors' sizes are unknown to the decoder.
        rank_bits = sum(math.log2(min(w.shape[0], w[0].numel()) + 1) for w in weights.values())
        return v, factors + rank_bits + other_bits

    return compress


def _measure_levels(method: str, levels: list[float], compress, context: _Context, refined: bool = False) -> list[CompressionPoint]:
    compressed = [compress(level) for level in levels]
    measured = context.measure([variant for variant, _ in compressed])
    points = []
    for level, (variant, bits), (accuracy, loss, train_accuracy, train_loss) in zip(levels, compressed, measured):
        nonzero, ratio, speedup = context.sizes(variant)
        points.append(CompressionPoint(method, level, accuracy, loss, train_accuracy, train_loss, nonzero, ratio, speedup, bits, refined))
    return points


def _sensitivities(context: _Context, spec: CompressibilitySpec, baseline: float) -> list[LayerSensitivity]:
    grid = [s for s in sorted(spec.sparsities) if s > 0]
    variants = [(name, s, {name: methods.global_magnitude({name: w}, s)[name]}) for name, w in context.weights.items() for s in grid]
    accuracies = [a for a, _ in evaluate_variants(context.model, [v for _, _, v in variants], context.x_eval, context.y_eval)]
    out = []
    for i, name in enumerate(context.weights):
        curve = accuracies[i * len(grid) : (i + 1) * len(grid)]
        xs, drops = [0.0, *grid], [0.0, *(baseline - a for a in curve)]
        integral = float(np.trapezoid(drops, xs))
        out.append(LayerSensitivity(name.removesuffix(".weight"), grid, curve, integral))
    return out


def _best_bound(points: list[CompressionPoint], spec: CompressibilitySpec, n: int, num_classes: int, baseline: float) -> OccamBound | None:
    """The tightest kl bound over every point measured; the choice of method and level is paid for in bits."""
    if not points:
        return None
    levels_per_method = {m: sum(p.method == m for p in points) for m in {p.method for p in points}}
    best = None
    for p in points:
        hyper = math.log2(len(levels_per_method)) + math.log2(levels_per_method[p.method])
        bits = p.code_bits + hyper
        error = 1.0 - p.train_accuracy
        candidate = OccamBound(
            p.method, p.level, bits, hyper, error, n,
            kl_bound(error, bits, n, spec.delta), catoni_bound(error, bits, n, spec.delta), hoeffding_bound(error, bits, n, spec.delta),
            1.0 - 1.0 / num_classes,
        )  # fmt: skip
        if best is None or candidate.kl < best.kl:
            best = candidate
    return best
