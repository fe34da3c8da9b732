"""How busy the CPUs a process may run on are right now, from the kernel's per-CPU time counters.

A worker samples this once, before torch loads, to choose how its OpenMP threads wait (threads.py):
spinning is fastest when every CPU it was given is free, and ruinous when another process holds one.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# /proc/stat's per-CPU columns: user nice system idle iowait irq softirq steal [guest guest_nice].
# guest time is already counted in user, so only the first eight columns add up to the CPU's time.
IDLE_COLUMNS = (3, 4)
COUNTED_COLUMNS = 8


def cpu_times(stat: Path = PROC_STAT) -> dict[int, tuple[int, int]]:
    """(total, idle) clock ticks of every CPU since boot; empty where the file is missing or unreadable."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *columns = line.split()
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit():
            continue
        ticks = [int(value) for value in columns[:COUNTED_COLUMNS]]
        times[int(name[3:])] = (sum(ticks), sum(ticks[column] for column in IDLE_COLUMNS))
    return times


def busy_cpus(cpus: Iterable[int], interval_s: float = 0.25, stat: Path = PROC_STAT) -> float | None:
    """CPU-equivalents of `cpus` that other work kept busy over the next `interval_s`, None if unknown.

    Niced processes count as busy: a descheduled sibling thread is as late whether a nice-19 job or a
    nice-0 one took its CPU (the spin sweep in bench/RESULTS.md, issue 17, ran beside nice-19 jobs).
    """
    wanted = set(cpus)
    before = cpu_times(stat)
    time.sleep(interval_s)
    after = cpu_times(stat)
    shared = wanted & before.keys() & after.keys()
    if not shared:
        return None
    busy = 0.0
    for cpu in shared:
        total = after[cpu][0] - before[cpu][0]
        idle = after[cpu][1] - before[cpu][1]
        busy += (total - idle) / total if total > 0 else 0.0
    return busy
