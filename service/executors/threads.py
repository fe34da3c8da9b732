"""How many CPU threads a training process may use, and OpenMP settings that keep it fast on a shared host.

torch sizes its intra-op pool from the machine's core count, and the OpenMP runtime it ships (libgomp)
spin-waits for a sibling thread before sleeping. When the process really has fewer cores than threads -
other audits, other tenants, a CPU quota - a thread spins while the sibling it waits for is descheduled,
and small-op training runs 10-40x slower than with one thread (issue 17, bench/thread_contention.py).
So a worker takes its thread count from the CPUs it is given (affinity mask and cgroup quota, shared
among the audits run at once), and its threads sleep at once instead of spinning. Both must be set
before torch is imported: libgomp reads its environment once, when it loads.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Operator settings that already say how OpenMP threads wait; when one is present it is kept.
WAIT_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


@dataclass(frozen=True)
class ThreadPlan:
    """The intra-op thread count of one training process, and why (recorded in the report's environment)."""

    threads: int
    source: str


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


def openmp_environment(plan: ThreadPlan, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Variables to set before torch loads: the pool size, and passive waits unless the operator chose a policy."""
    settings = {"OMP_NUM_THREADS": str(plan.threads), "MKL_NUM_THREADS": str(plan.threads)}
    if not any(variable in environ for variable in WAIT_POLICY_VARIABLES):
        settings["OMP_WAIT_POLICY"] = "PASSIVE"
    return settings


def wait_policy(environ: Mapping[str, str] = os.environ) -> str:
    """How this process's OpenMP threads wait, as its environment says (recorded beside the thread count)."""
    chosen = [f"{variable}={environ[variable]}" for variable in WAIT_POLICY_VARIABLES if variable in environ]
    return ", ".join(chosen) if chosen else "OpenMP's default waits (spin, then sleep)"


def apply_thread_plan(plan: ThreadPlan) -> None:
    """Configure this process: the OpenMP environment if torch has not loaded yet, and torch's pool size.

    Call it first thing in a worker. If torch was imported already (a notebook, a test process), the wait
    policy can no longer change, but the pool size still can.
    """
    if "torch" not in sys.modules:
        os.environ.update(openmp_environment(plan))
    import torch

    torch.set_num_threads(plan.threads)
