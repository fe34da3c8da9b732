"""How many CPU threads a training process may use, and OpenMP settings that keep it fast on a shared host.

torch sizes its intra-op pool from the machine's core count, and the OpenMP runtime it ships (libgomp)
spin-waits for a sibling thread before sleeping. When the process really has fewer cores than threads -
other audits, other tenants, a CPU quota - a thread spins while the sibling it waits for is descheduled,
and small-op training runs 10-40x slower than with one thread (issue 17, bench/thread_contention.py).
So a worker takes its thread count from the CPUs it is given (affinity mask and cgroup quota, shared
among the audits run at once), and its threads spin only briefly, and only when the CPUs it was given
are idle as it starts; otherwise they sleep at once. Both must be set before torch is imported: libgomp
reads its environment once, when it loads.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from effcap.service.executors.cpu_load import busy_cpus

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Operator settings that already say how OpenMP threads wait; when one is present it is kept.
WAIT_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# Spins before a waiting thread sleeps when the worker's CPUs are idle: libgomp's default is 300,000.
# The short count keeps the idle step rate of spinning and loses far less than the default when load
# arrives after the worker started (bench/wait_policy_step.py; decision 41).
SHORT_SPIN_COUNT = 10_000
# Other work may keep this much of a CPU busy (the server, a shell) and the CPUs still count as idle.
IDLE_MARGIN_CPUS = 0.5


@dataclass(frozen=True)
class ThreadPlan:
    """The intra-op thread count of one training process, and why (recorded in the report's environment)."""

    threads: int
    source: str
    # How its OpenMP threads wait and why; set when the plan is applied (apply_thread_plan).
    waits: str = ""


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), None when unlimited.

    A container's quota is the share the kernel enforces: threads beyond it are throttled, not run.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for folder in ("cpu", "cpu,cpuacct"):
        try:
            quota_us = int((root / folder / "cpu.cfs_quota_us").read_text())
            period_us = int((root / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None


def affinity_cpus() -> int:
    """CPUs this process may be scheduled on (taskset, cpusets, Kubernetes' static CPU manager)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity masks
        return os.cpu_count() or 1


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> tuple[int, str]:
    """Whole CPUs this process is actually given, at least 1, and a description of where the number comes from."""
    affinity = affinity_cpus()
    quota = cgroup_cpu_limit(cgroup_root)
    quota_text = "none" if quota is None else f"{quota:g} CPUs"
    cpus = affinity if quota is None else min(affinity, max(1, math.floor(quota)))
    return max(1, cpus), f"affinity mask {affinity} CPUs, cgroup quota {quota_text}"


def plan_threads(
    concurrent_audits: int,
    requested: int | None = None,
    environ: Mapping[str, str] = os.environ,
    cgroup_root: Path = CGROUP_ROOT,
) -> ThreadPlan:
    """Threads for one of `concurrent_audits` training processes sharing this host's CPUs.

    An explicit request (`--worker-threads`, `--threads`) wins, then an operator's OMP_NUM_THREADS;
    otherwise the CPUs given to this process are divided evenly among the audits that may run at once.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads must be at least 1, got {requested}")
        cpus, where = available_cpus(cgroup_root)
        beyond = f" (more than the {cpus} CPUs given: {where})" if requested > cpus else ""
        return ThreadPlan(requested, f"{requested} set explicitly (--worker-threads or --threads){beyond}")
    from_environment = environ.get("OMP_NUM_THREADS", "").strip()
    if from_environment.isdigit() and int(from_environment) >= 1:
        return ThreadPlan(int(from_environment), f"OMP_NUM_THREADS={from_environment} in the environment")
    cpus, where = available_cpus(cgroup_root)
    share = max(1, cpus // max(1, concurrent_audits))
    return ThreadPlan(share, f"{where}, {concurrent_audits} audit(s) at a time")


def openmp_environment(
    plan: ThreadPlan,
    environ: Mapping[str, str] = os.environ,
    busy: float | None = None,
    cgroup_root: Path = CGROUP_ROOT,
) -> tuple[dict[str, str], str]:
    """Variables to set before torch loads, and why: the pool size and how its threads wait.

    An operator's wait setting is kept. Otherwise threads spin `SHORT_SPIN_COUNT` times when the CPUs
    this process was given were idle at start (`busy`: CPU-equivalents other work used, from cpu_load),
    and sleep at once (passive) when they were busy, unknown, or capped by a cgroup quota, where a
    spinning thread burns the quota its sibling needs. A lone thread has no sibling to wait for.
    """
    settings = {"OMP_NUM_THREADS": str(plan.threads), "MKL_NUM_THREADS": str(plan.threads)}
    if any(variable in environ for variable in WAIT_POLICY_VARIABLES):
        return settings, f"{wait_policy(environ)} (set by the operator)"
    cpus = affinity_cpus()
    if plan.threads == 1:
        reason = "one thread"
    elif cgroup_cpu_limit(cgroup_root) is not None:
        reason = "a cgroup CPU quota is in force"
    elif busy is None:
        reason = "the CPUs' load could not be read"
    elif busy > max(0.0, cpus - plan.threads) + IDLE_MARGIN_CPUS:
        reason = f"{busy:.1f} of the {cpus} CPUs given were busy at start"
    else:
        settings["GOMP_SPINCOUNT"] = str(SHORT_SPIN_COUNT)
        return settings, f"GOMP_SPINCOUNT={SHORT_SPIN_COUNT}: {busy:.1f} of the {cpus} CPUs given were busy at start"
    settings["OMP_WAIT_POLICY"] = "PASSIVE"
    return settings, f"OMP_WAIT_POLICY=PASSIVE: {reason}"


def wait_policy(environ: Mapping[str, str] = os.environ) -> str:
    """How this process's OpenMP threads wait, as its environment says (recorded beside the thread count)."""
    chosen = [f"{variable}={environ[variable]}" for variable in WAIT_POLICY_VARIABLES if variable in environ]
    return ", ".join(chosen) if chosen else "OpenMP's default waits (spin, then sleep)"


def apply_thread_plan(plan: ThreadPlan) -> ThreadPlan:
    """Configure this process and return the plan with how its threads wait (`waits`), for the report.

    Call it first thing in a worker: the OpenMP environment is set only if torch has not loaded yet
    (the CPUs' load is sampled for a quarter of a second then). If torch was imported already (a notebook,
    a test process), the wait policy can no longer change, but the pool size still can.
    """
    if "torch" in sys.modules:
        waits = f"{wait_policy()} (torch was loaded before the plan was applied)"
    else:
        busy = busy_cpus(os.sched_getaffinity(0)) if plan.threads > 1 and hasattr(os, "sched_getaffinity") else None
        settings, waits = openmp_environment(plan, os.environ, busy)
        os.environ.update(settings)
    import torch

    torch.set_num_threads(plan.threads)
    return dataclasses.replace(plan, waits=waits)
