"""How an analysis reports progress: hooks a caller overrides (the defaults do nothing)."""

from __future__ import annotations

from typing import Any


class AnalysisProgress:
    def update(self, stage: str, done: int, total: int, fraction: float) -> None:
        """`done` of `total` units (trials, subset sizes) finished; `fraction` of the analysis in [0, 1]."""

    def trial_finished(self, result: Any) -> None:
        """A randomization-test trial ended (a `trial_batch.TrialResult`)."""
