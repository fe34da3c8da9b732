"""The card's compressibility headline: global magnitude pruning's sparsity, on a split where it means something.

Pruning cannot lower the accuracy of a model at chance, so on a split where the model is at chance every
sparsity is "within tolerance" and the headline would read 99.9% compressible for a model that learnt
nothing there (a random-label model on its test split). The headline then comes from the train split
when the model is above chance there (a memorising model is), and is left out otherwise, with the reason.
"""

from __future__ import annotations

from effcap.protos.v1 import report_pb2

# Accuracy within this many points of chance (1/K) counts as chance: pruning has nothing to lose there.
AT_CHANCE_MARGIN = 0.05
METHOD = "magnitude_global"


def set_compressibility_headline(card: report_pb2.CapacityCard, report: report_pb2.CompressibilityReport) -> None:
    """Fill card.compressibility, compression_ratio, compressibility_split and compressibility_note."""
    method = next((m for m in report.methods if m.method == METHOD), None)
    if method is None:
        return
    chance = card.chance_accuracy
    if report.baseline_accuracy > chance + AT_CHANCE_MARGIN:
        card.compressibility, card.compression_ratio = method.sparsity, method.compression_ratio
        card.compressibility_split = report.eval_split
        return
    at_chance = (
        f"the model is at chance on the {report.eval_split} split ({100 * report.baseline_accuracy:.1f}% accuracy, "
        f"chance {100 * chance:.1f}%), where any pruning keeps chance accuracy"
    )
    if report.eval_split == "train" or report.baseline_train_accuracy <= chance + AT_CHANCE_MARGIN:
        card.compressibility_note = f"no compressibility headline: {at_chance}, on the train split too"
        return
    point = next((p for p in report.points if p.method == METHOD and p.level == method.train_sparsity), None)
    card.compressibility = method.train_sparsity
    if point is not None:
        card.compression_ratio = point.compression_ratio
    card.compressibility_split = "train"
    card.compressibility_note = f"measured on the train split: {at_chance}"
