"""The report's preset and the defaults it chose, as lines every renderer shows under the header."""

from __future__ import annotations

from effcap.protos.v1 import report_pb2

PRESET_MEANINGS = {
    "quick": "a few conditions and seeds, minutes on a CPU",
    "standard": "the randomization test's training scaled to SGD steps with a probed learning rate, so its trials "
    "fit; the other analyses keep their own training defaults",
    "paper": "Zhang et al.'s conditions and per-epoch schedule",
}


def settings_lines(report: report_pb2.AuditReport) -> list[str]:
    """ "Preset standard (...)" and one line per option the audit chose because the spec left it unset."""
    preset = report.spec.preset or "standard"
    return [f"Preset {preset} ({PRESET_MEANINGS.get(preset, 'unknown')})", *report.defaults_chosen]
