"""Live progress in the terminal, for server events and for --local runs alike."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from effcap.protos.v1 import audit_pb2, report_pb2, spec_pb2

_SHORT = {
    spec_pb2.CONDITION_KIND_TRUE_LABELS: "true",
    spec_pb2.CONDITION_KIND_RANDOM_LABELS: "random",
    spec_pb2.CONDITION_KIND_SHUFFLED_PIXELS: "shuffled_pixels",
    spec_pb2.CONDITION_KIND_RANDOM_PIXELS: "random_pixels",
    spec_pb2.CONDITION_KIND_GAUSSIAN_INPUTS: "gaussian",
}


def condition_label(condition: spec_pb2.Condition) -> str:
    if condition.kind == spec_pb2.CONDITION_KIND_CORRUPT_LABELS:
        return f"corrupt({condition.corruption:g})"
    return _SHORT.get(condition.kind, "unspecified")


def trial_line(trial: report_pb2.TrialResult) -> str:
    fit = (
        f"fitted in {trial.steps_to_fit} steps ({trial.epochs_to_fit} epochs, {trial.seconds_to_fit:.1f} s)"
        if trial.fitted
        else f"not fitted in {trial.steps_run} steps"
    )
    return (
        f"  {condition_label(trial.condition)} seed {trial.seed_index}: train {100 * trial.train_accuracy:.1f}%, "
        f"test {100 * trial.test_accuracy:.1f}%, {fit}"
    )


class ProgressView:
    """A progress bar plus one line per finished trial. Use as a context manager."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self._console = console
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
            console=console, disable=not enabled, transient=True,
        )
        self._task = self._progress.add_task("waiting", total=1.0)
        self._enabled = enabled

    def __enter__(self) -> ProgressView:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    # From a server's event stream.
    def on_event(self, event: audit_pb2.AuditEvent) -> None:
        p = event.progress
        description = f"{p.stage} [{p.trials_done}/{p.trials_total}]" if p.trials_total else p.stage
        self._progress.update(self._task, completed=p.fraction, description=description)
        if event.HasField("trial_finished"):
            self._print(trial_line(event.trial_finished))
        elif event.message:
            self._print(f"  {event.message}")

    # ProgressSink for in-process (--local) runs.
    def progress(self, stage: str, trials_done: int, trials_total: int, fraction: float) -> None:
        self._progress.update(self._task, completed=fraction, description=f"{stage} [{trials_done}/{trials_total}]")

    def trial_finished(self, trial: report_pb2.TrialResult) -> None:
        self._print(trial_line(trial))

    def _print(self, line: str) -> None:
        if self._enabled:
            self._progress.console.print(line, highlight=False, markup=False)  # messages may quote [labels]
