"""Printing an AuditEstimate (`effcap audit --dry-run`): the cost of an audit before waiting for it."""

from __future__ import annotations

from effcap.protos.v1 import audit_pb2


def duration(seconds: float) -> str:
    """ "45 s", "3 min 20 s", "2 h 05 min": the units a person plans a wait in."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def estimate_lines(estimate: audit_pb2.AuditEstimate) -> list[str]:
    """One line per analysis, a total against the server's limit, then how the numbers were made."""
    lines = [f"{'analysis':<22}{'trials':>8}{'SGD steps':>14}{'examples':>16}  {'expected':>14}  {'at most':>14}"]
    for a in estimate.analyses:
        lines.append(
            f"{a.analysis:<22}{a.trials:>8,}{a.sgd_steps:>14,}{a.training_examples:>16,}  "
            f"{duration(a.expected_seconds):>14}  {duration(a.estimated_seconds):>14}"
        )
    total = sum(a.sgd_steps for a in estimate.analyses)
    lines.append(
        f"{'total':<30}{total:>14,}{estimate.training_examples:>16,}  "
        f"{duration(estimate.expected_seconds):>14}  {duration(estimate.estimated_seconds):>14}"
    )
    within = "within" if estimate.training_examples <= estimate.max_training_examples else "OVER"
    lines.append(f"{within} the server's limit of {estimate.max_training_examples:,} training examples")
    if estimate.audits_ahead:
        lines.append(f"{estimate.audits_ahead} audit(s) queued or running ahead of it")
    lines.append(
        "SGD steps and 'at most' are the budget; 'expected' assumes trials stop when a typical network fits "
        f"(true labels in 25 epochs, others in 100); {estimate.calibration}"
    )
    lines += [f"default: {line}" for line in estimate.defaults_chosen]
    return lines
