"""Where a running audit reports its progress: the worker's pipe, or a terminal for --local."""

from __future__ import annotations

from typing import Protocol

from effcap.protos.v1 import report_pb2


class ProgressSink(Protocol):
    def progress(self, stage: str, trials_done: int, trials_total: int, fraction: float) -> None: ...

    def trial_finished(self, trial: report_pb2.TrialResult) -> None: ...
