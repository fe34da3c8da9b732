"""The ETA of the plain progress lines: none until the audit's own progress gives a rate, then that rate's."""

from __future__ import annotations

import io

from rich.console import Console

from effcap.clients.progress_view import ProgressView
from effcap.protos.v1 import audit_pb2


def event(at_s: float, stage: str, fraction: float) -> audit_pb2.AuditEvent:
    made = audit_pb2.AuditEvent(progress=audit_pb2.AuditProgress(stage=stage, fraction=fraction))
    made.time.FromMicroseconds(round(at_s * 1e6))
    return made


def lines_for(events: list[audit_pb2.AuditEvent]) -> list[str]:
    out = io.StringIO()
    with ProgressView(Console(file=out, force_terminal=False, width=200), interval_s=0) as view:  # a line per event
        for each in events:
            view.on_event(each)
    return out.getvalue().splitlines()


def eta_of(line: str) -> str | None:
    return line.split(" | ETA ")[1] if " | ETA " in line else None


# An audit queued for 40 s whose worker takes 20 s to start, then trains at 1% of the audit per second: its first
# progress (one epoch of the first trial) is 0.05%, which the old `elapsed × (1 − f) / f` made hours.
AUDIT = [
    event(100, "queued: position 1", 0.0),
    event(140, "worker started", 0.0),
    event(160, "randomization: true seed 0, epoch 1/300", 0.0005),
    event(161, "randomization: true seed 0, epoch 2/300", 0.0105),
    event(170, "randomization: true seed 0, epoch 20/300", 0.1005),
    event(190, "randomization: true seed 1, epoch 40/300", 0.3005),
]


def test_no_eta_until_the_audits_own_progress_gives_a_rate_then_the_rate_it_trains_at():
    etas = [eta_of(line) for line in lines_for(AUDIT)]
    # Queued, starting, a first epoch, 1% in 1 s: nothing to extrapolate from yet.
    assert etas[:4] == [None, None, None, None]
    # 70 s left at 1% per second; the start-up and the queue are not counted as time spent on the share done.
    assert etas[4:] == ["1:30", "1:10"]


def test_a_view_that_joins_a_running_audit_takes_the_rate_from_the_events_times_not_its_own():
    # `effcap watch` (or a reconnect) receives the stored events at once, then live ones: 60 s are left at 1%/s.
    live = event(200, "randomization: true seed 1, epoch 70/300", 0.4005)
    etas = [eta_of(line) for line in lines_for([*AUDIT, live])]
    assert etas[-1] == "1:00"


def test_an_audit_queued_anew_after_a_restart_starts_its_rate_again():
    resumed = [event(300, "queued: position 1", 0.3005), event(330, "worker started", 0.0)]  # as the scheduler sends
    resumed.append(event(340, "randomization: true seed 1, epoch 41/300", 0.31))
    resumed.append(event(350, "randomization: true seed 1, epoch 50/300", 0.4))
    etas = [eta_of(line) for line in lines_for([*AUDIT, *resumed])]
    # Not (350 − 160) s over 40%: the 110 s between the last progress and the restart's are no training.
    assert etas[-4:-1] == [None, None, None] and etas[-1] == "1:07"
