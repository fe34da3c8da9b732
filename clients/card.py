"""The capacity card: the headline numbers of a report, as plain sentences every renderer shows first."""

from __future__ import annotations

from effcap.clients.formatting import PUBLISHED_BITS_PER_PARAMETER, percent
from effcap.protos.v1 import report_pb2


def card_lines(report: report_pb2.AuditReport) -> list[str]:
    card = report.card
    lines = []
    if card.HasField("random_labels_train_accuracy"):
        memorised = card.random_labels_train_accuracy >= report.randomization.fit_threshold
        verdict = "Memorises random labels" if memorised else "Does not fully memorise random labels"
        lines.append(
            f"{verdict}: {percent(card.random_labels_train_accuracy)} train accuracy on random labels, "
            f"{percent(card.random_labels_test_accuracy)} test (chance {percent(card.chance_accuracy)})."
        )
    if card.HasField("random_labels_slowdown"):
        lines.append(f"Fitting random labels takes {card.random_labels_slowdown:.2f}× the SGD steps of true labels.")
    else:
        censored = [c for c in report.randomization.conditions if c.label == "random" and c.HasField("slowdown_lower_bound")]
        if censored:
            lines.append(
                f"Fitting random labels takes at least {censored[0].slowdown_lower_bound:.2f}× the SGD steps of true labels "
                "(not every trial fitted within the budget)."
            )
    own = report.model.checkpoint_test_accuracy if report.model.HasField("checkpoint_test_accuracy") else None
    if card.HasField("true_labels_test_accuracy"):
        # These are networks this audit trained afresh, not the user's checkpoint: say so, beside the checkpoint's.
        checkpoint = f"; the checkpoint itself: {percent(own)}" if own is not None else ""
        lines.append(
            f"Test accuracy with true labels, of networks trained afresh by this audit: "
            f"{percent(card.true_labels_test_accuracy)}{checkpoint}."
        )
    elif own is not None:
        lines.append(f"Test accuracy of the checkpoint itself: {percent(own)}.")
    if card.HasField("memorized_examples"):
        bound = "at least " if report.memorization.reached_max_size else ""
        lines.append(
            f"Memorisation capacity: {bound}{card.memorized_examples} random labels = {bound}{card.memorization_bits:.0f} bits "
            f"({card.memorization_bits_per_parameter:.4f} bits per parameter; {PUBLISHED_BITS_PER_PARAMETER})."
        )
    if card.HasField("rademacher"):
        r = card.rademacher
        lines.append(
            f"Empirical Rademacher complexity (fitting {r.draws} random sign vectors): {r.mean:.3f} "
            f"[{r.ci_low:.3f}, {r.ci_high:.3f}] (a lower estimate; 1 means any signs can be fitted)."
        )
    if card.HasField("compressibility"):
        c = report.compressibility
        split = card.compressibility_split or c.eval_split
        lines.append(
            f"Compressibility: {100 * card.compressibility:.1f}% of weights can be removed by global magnitude pruning "
            f"({card.compression_ratio:.1f}× fewer) within {100 * c.tolerance:g} point(s) of {split} accuracy"
            + (f" ({card.compressibility_note})." if card.compressibility_note else ".")
        )
    elif card.compressibility_note:
        lines.append(f"Compressibility: {card.compressibility_note}.")
    if not (report.HasField("rademacher") or report.HasField("compressibility")):
        # Bounds come from these two analyses alone: "none fully paid" would read as bounds computed and found wanting.
        lines.append(
            "Generalisation bounds: not computed (the rademacher and compressibility analyses, which compute them, "
            "were not run)."
        )
    elif card.bounds_computed == 0:
        unrun = "" if report.HasField("rademacher") else "; the rademacher analysis, which computes most, was not run"
        lines.append(
            "Generalisation bounds: none fully paid for (every constant, data-chosen parameter and estimate) "
            f"in this audit{unrun}."
        )
    elif card.HasField("tightest_bound"):
        b = card.tightest_bound
        lines.append(
            f"Tightest non-vacuous bound: test error of {b.bounds_on or 'the checkpoint'} ≤ {b.value:.3f} ({b.name}); "
            f"{card.bounds_vacuous} of {card.bounds_computed} fully paid bounds are vacuous."
        )
    else:
        lines.append(
            f"Generalisation bounds: all {card.bounds_computed} fully paid bounds are vacuous (≥ 1), as effective "
            "capacity predicts; values with omitted constants or built on estimates are in the report, not counted here."
        )
    if report.warnings:
        lines.append(f"{len(report.warnings)} warning(s): see the end of the report.")
    return lines


def bound_status(bound: report_pb2.BoundReport) -> str:
    """What a bound's value is, in the reports' bound tables: a paid bound on a named classifier, or not a bound."""
    if bound.fully_paid:
        return f"bound on {bound.bounds_on or 'the checkpoint'}"
    return "not fully paid (omitted constants, an unpaid choice or an estimate): a guide, not a bound"


def label_conditions(r: report_pb2.RandomizationReport) -> list[tuple[float, report_pb2.ConditionResult]]:
    """(corruption p, condition) for the label conditions, by increasing p: the test-error-vs-p curve."""
    return sorted(((x, c) for c in r.conditions if (x := condition_x(c)) is not None), key=lambda pair: pair[0])


def condition_x(condition: report_pb2.ConditionResult) -> float | None:
    """Label-corruption level of a condition (true 0, corrupt(p) p, random 1); None for input conditions."""
    from effcap.protos.v1 import spec_pb2

    kind = condition.condition.kind
    if kind == spec_pb2.CONDITION_KIND_TRUE_LABELS:
        return 0.0
    if kind == spec_pb2.CONDITION_KIND_CORRUPT_LABELS:
        return condition.condition.corruption
    if kind == spec_pb2.CONDITION_KIND_RANDOM_LABELS:
        return 1.0
    return None
