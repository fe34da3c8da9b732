"""Live progress, for server events and for --local runs alike.

In a terminal: a bar. Elsewhere (a CI log, a file, a notebook's captured output) a bar draws nothing
useful, so one plain line is printed every few seconds instead: stage, trials done/total, share
done, elapsed time and, once it can be measured, an ETA; a queued audit's line shows its place in line.
"""

from __future__ import annotations

import time

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


# Seconds between plain progress lines outside a terminal.
PLAIN_INTERVAL_S = 5.0


def progress_line(
    stage: str, trials_done: int, trials_total: int, fraction: float, elapsed_s: float, eta_s: float | None = None
) -> str:
    """"randomization: random seed 1 finished | trials 3/6 | 52% | elapsed 1:05 | ETA 1:00"; no ETA while None."""
    parts = [stage or "starting"]
    if trials_total:
        parts.append(f"trials {trials_done}/{trials_total}")
    parts += [f"{100 * fraction:.0f}%", f"elapsed {_clock(elapsed_s)}"]
    if eta_s is not None:
        parts.append(f"ETA {_clock(eta_s)}")
    return " | ".join(parts)


class Eta:
    """Time left, from the rate the audit's share done has grown at since its first measurable progress.

    Not from the view's elapsed time: that counts the upload, the queue and the worker's start (torch's import,
    loading the inputs), which the share done does not, so a first share of a percent or less (one epoch of the
    first trial) gave `elapsed × (1 − f) / f`, hours for a minutes-long audit; and a view that joined an audit
    half done (`effcap watch`, a reconnect) spread its own few seconds over the first half. Times are the events'
    own (the server's clock), so replayed events count when they happened. None until the share has grown by
    MIN_GAIN over MIN_SECONDS.
    """

    MIN_GAIN = 0.02
    MIN_SECONDS = 3.0

    def __init__(self) -> None:
        self._since: tuple[float, float] | None = None  # (time, share done) of the first progress past 0

    def restart(self) -> None:
        """Queued anew (a server restart): the next progress is a new starting point."""
        self._since = None

    def update(self, fraction: float, at: float) -> float | None:
        if self._since is None:
            if fraction > 0:  # events before it (queued, worker started) are start-up, not progress
                self._since = (at, fraction)
            return None
        since, start = self._since
        gained, seconds = fraction - start, at - since
        if gained < self.MIN_GAIN or seconds < self.MIN_SECONDS or fraction >= 1:
            return None
        return seconds * (1 - fraction) / gained


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class ProgressView:
    """A progress bar (plain lines outside a terminal) plus one line per finished trial. Use as a context manager."""

    def __init__(self, console: Console, enabled: bool = True, interval_s: float = PLAIN_INTERVAL_S) -> None:
        self._console = console
        self._plain = enabled and not console.is_terminal
        self._interval_s = interval_s
        self._started = time.monotonic()
        self._last_line = -interval_s
        self._last_stage = ""
        self._eta = Eta()
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
            console=console, disable=not enabled or self._plain, transient=True,
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
        at = event.time.ToMicroseconds() / 1e6 if event.HasField("time") else None
        self._plain_line(p.stage, p.trials_done, p.trials_total, p.fraction, at)
        if event.HasField("trial_finished"):
            self._print(trial_line(event.trial_finished))
        elif event.message:
            self._print(f"  {event.message}")

    # ProgressSink for in-process (--local) runs.
    def progress(self, stage: str, trials_done: int, trials_total: int, fraction: float) -> None:
        self._progress.update(self._task, completed=fraction, description=f"{stage} [{trials_done}/{trials_total}]")
        self._plain_line(stage, trials_done, trials_total, fraction)

    def trial_finished(self, trial: report_pb2.TrialResult) -> None:
        self._print(trial_line(trial))

    def _plain_line(
        self, stage: str, trials_done: int, trials_total: int, fraction: float, at: float | None = None
    ) -> None:
        """Outside a terminal: a line when the interval has passed, or at once when the audit is queued anew.

        `at`: when the progress happened (an event's time), else now."""
        if not self._plain:
            return
        now = time.monotonic()
        queued = stage.startswith("queued")
        queued_anew = queued and stage != self._last_stage
        self._last_stage = stage
        if queued:
            self._eta.restart()
        eta_s = None if queued else self._eta.update(fraction, now if at is None else at)  # on every event
        if now - self._last_line < self._interval_s and not queued_anew:
            return
        self._last_line = now
        # Not wrapped: a log line cut at 80 columns splits the stage from its numbers.
        line = progress_line(stage, trials_done, trials_total, fraction, now - self._started, eta_s)
        self._progress.console.print(line, highlight=False, soft_wrap=True, markup=False)

    def _print(self, line: str) -> None:
        if self._enabled:
            self._progress.console.print(line, highlight=False, markup=False)  # messages may quote [labels]
