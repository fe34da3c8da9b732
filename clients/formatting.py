"""Number formats shared by every report renderer, so a number reads the same everywhere."""

from __future__ import annotations

from collections.abc import Callable

from effcap.protos.v1 import report_pb2


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def randomization_protocol(r: report_pb2.RandomizationReport) -> str:
    """What "fitted" and "test accuracy" mean in this report, in one sentence every renderer shows."""
    return (
        f"Fit = train accuracy ≥ {r.fit_threshold:g} within {r.max_epochs} epochs of {r.steps_per_epoch} steps; test accuracy on clean labels "
        "(input conditions transform the test inputs as they do the train inputs: with random pixels and Gaussian inputs "
        "test accuracy is near chance by design; shuffled pixels apply one fixed permutation, which stays learnable)"
    )


def slowdown(c: report_pb2.ConditionResult) -> str:
    """"2.31×", "≥ 4.00×" when some trials ran out of budget, or "—"."""
    if c.HasField("slowdown_vs_true"):
        return f"{c.slowdown_vs_true:.2f}×"
    if c.HasField("slowdown_lower_bound"):
        return f"≥ {c.slowdown_lower_bound:.2f}×"
    return "—"


def mean_std(stat: report_pb2.Statistic, fmt: Callable[[float], str] = percent) -> str:
    """"—" without values; the mean alone for one value or no spread; else "mean ± std"."""
    if stat.count == 0:
        return "—"
    return fmt(stat.mean) if stat.count == 1 or stat.std == 0 else f"{fmt(stat.mean)} ± {fmt(stat.std)}"


# Published bits per parameter (ANCHORS.md): Cover 1965 / Gardner 1988; Collins et al. 2017; Morris et al. 2025.
PUBLISHED_BITS_PER_PARAMETER = "a perceptron stores about 2, recurrent nets about 5, GPT-style transformers about 3.6"


def device_summary(environment: report_pb2.Environment) -> str:
    """The device, with torch's CPU thread count: CPU timings mean little without it."""
    if environment.cpu_threads <= 0:
        return environment.device
    threads = f"{environment.cpu_threads} CPU thread{'s' if environment.cpu_threads != 1 else ''}"
    return f"{environment.device}, {threads}"


def onnx_summary(model: report_pb2.ModelInfo) -> str | None:
    """How an ONNX model was translated and checked, in one sentence; None for other checkpoints."""
    if not model.HasField("onnx"):
        return None
    o = model.onnx
    return (
        f"imported from ONNX (opset {o.opset}, {o.producer or 'unknown exporter'}): "
        f"{o.onnx_nodes} nodes, {o.layers} layers; matches {o.reference_evaluator} to {o.max_abs_difference:.1e} "
        f"on the logits ({o.values_compared} values compared on {o.examples_compared} inputs)"
    )


def memorization_summary(m: report_pb2.MemorizationReport) -> str:
    """m*, its bits and bits per parameter, and the budget they depend on, in one sentence."""
    bound = "≥ " if m.reached_max_size else ""
    return (
        f"m* = {bound}{m.largest_fitted_size} random labels = {bound}{m.capacity_bits:.0f} bits, {m.bits_per_parameter:.4f} bits/parameter "
        f"(budget {m.budget_steps:,} SGD steps per subset size = {m.max_epochs} epochs of the train split; threshold {m.fit_threshold:g})"
    )
