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
    source = f" ({environment.cpu_threads_source})" if environment.cpu_threads_source else ""
    return f"{environment.device}, {threads}{source}"


def dataset_summary(data: report_pb2.DatasetInfo) -> str:
    """"builtin:digits, 1297 train / 500 test, 10 classes", or that the audit ran on the checkpoint alone."""
    kind = data.source.WhichOneof("source")
    if kind is None:
        return "none (the weights analysis reads the checkpoint alone)"
    source = f"builtin:{data.source.builtin}" if kind == "builtin" else f"sha256:{data.source.artifact.sha256[:12]}"
    return f"{source}, {data.train_examples} train / {data.test_examples} test, {data.num_classes} classes"


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
    relation = "≥" if m.reached_max_size else "="  # "m* ≥ 1024", never "m* = ≥ 1024"
    return (
        f"m* {relation} {m.largest_fitted_size} random labels {relation} {m.capacity_bits:.0f} bits, "
        f"{bound}{m.bits_per_parameter:.4f} bits/parameter "
        f"(budget {m.budget_steps:,} SGD steps per subset size = {m.max_epochs} epochs of the train split; threshold {m.fit_threshold:g})"
    )


# What CompressionPoint.level means for the methods that have no sparsity s*.
LEVEL_MEANINGS = {"quantization": "bits per weight", "low_rank": "energy kept", "low_rank_by_rank": "rank share kept"}


def best_within_tolerance(c: report_pb2.CompressibilityReport) -> list[tuple[str, report_pb2.CompressionPoint | None]]:
    """For each method without an s* row (quantisation, low rank): its shortest code whose accuracy stays
    within tolerance, or None. The plot shows these methods; the tables must too."""
    with_s_star = {m.method for m in c.methods}
    floor = c.baseline_accuracy - c.tolerance
    best: dict[str, report_pb2.CompressionPoint | None] = {}
    for point in c.points:
        if point.method in with_s_star:
            continue
        current = best.setdefault(point.method, None)
        if point.accuracy >= floor and (current is None or point.code_bits < current.code_bits):
            best[point.method] = point
    return list(best.items())


def compression_row(
    c: report_pb2.CompressibilityReport, method: str, point: report_pb2.CompressionPoint | None
) -> list[str]:
    """method, level, accuracy, code size and its factor against float32 weights; dashes when nothing qualified."""
    if point is None:
        return [method, "none within tolerance", "—", "—", "—"]
    float32_bits = 32 * c.parameter_count
    factor = f"{float32_bits / point.code_bits:.1f}×" if point.code_bits > 0 and float32_bits else "—"
    level = f"{point.level:g} {LEVEL_MEANINGS.get(method, 'level')}"
    return [method, level, percent(point.accuracy), f"{point.code_bits / 8 / 1024:,.1f} KiB", factor]


COMPRESSION_COLUMNS = ("method", "most compressed within tolerance", "accuracy", "code size", "vs float32")
