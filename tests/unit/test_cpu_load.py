"""The CPUs' load a worker samples before choosing how its threads wait (service/executors/cpu_load.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from effcap.service.executors.cpu_load import busy_cpus, cpu_times


def test_cpu_times_add_the_eight_time_columns_and_skip_guest_time(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  99 99 99 99 99 99 99 99 0 0\n"
        "cpu0 10 5 3 100 2 1 1 0 7 0\n"
        "cpu1 20 0 0 50 0 0 0 4\n"
        "intr 1 2 3\n"
        "cpufreq 1 2\n"
    )
    # cpu0: user+nice+system+idle+iowait+irq+softirq+steal = 122, idle+iowait = 102; guest (7) is inside user.
    assert cpu_times(stat) == {0: (122, 102), 1: (74, 50)}
    assert cpu_times(tmp_path / "missing") == {}
    assert busy_cpus([0], interval_s=0.0, stat=tmp_path / "missing") is None


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_a_cpu_held_by_a_busy_loop_reads_as_busy():
    cpu = min(os.sched_getaffinity(0))
    pin_and_spin = f"import os; os.sched_setaffinity(0, {{{cpu}}}); print(flush=True)\nwhile True: pass"
    burner = subprocess.Popen([sys.executable, "-c", pin_and_spin], stdout=subprocess.PIPE)
    try:
        burner.stdout.readline()  # pinned and spinning
        busy = busy_cpus([cpu], interval_s=0.5)
    finally:
        burner.kill()
        burner.wait()
    assert busy is not None and 0.8 <= busy <= 1.0
