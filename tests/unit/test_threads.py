"""Thread plans: the CPUs a process is given (affinity, cgroup quota), shared among the audits run at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from effcap.service.executors.threads import (
    SHORT_SPIN_COUNT,
    ThreadPlan,
    affinity_cpus,
    cgroup_cpu_limit,
    openmp_environment,
    plan_threads,
    wait_policy,
)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "400000 100000\n"}, 4.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "300000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 3.0),
        ({}, None),
        ({"cpu.max": "garbage\n"}, None),
    ],
)
def test_the_cgroup_quota_is_read_from_v2_then_v1(tmp_path, files, limit):
    assert cgroup_cpu_limit(write(tmp_path, files)) == limit


def test_the_cpus_given_are_divided_among_the_audits_run_at_once(tmp_path):
    unlimited = write(tmp_path / "unlimited", {"cpu.max": "max 100000"})
    cpus = affinity_cpus()
    for audits in (1, 2, 3, 64):
        plan = plan_threads(audits, environ={}, cgroup_root=unlimited)
        assert plan.threads == max(1, cpus // audits)
        assert f"affinity mask {cpus} CPUs" in plan.source and f"{audits} audit(s) at a time" in plan.source


def test_a_quota_below_the_affinity_mask_caps_the_threads_rounding_down(tmp_path):
    quota = write(tmp_path, {"cpu.max": "150000 100000"})
    plan = plan_threads(1, environ={}, cgroup_root=quota)
    assert plan.threads == 1 and "cgroup quota 1.5 CPUs" in plan.source
    tiny = write(tmp_path / "tiny", {"cpu.max": "10000 100000"})
    assert plan_threads(1, environ={}, cgroup_root=tiny).threads == 1  # never zero


def test_an_explicit_request_wins_then_the_operators_omp_num_threads(tmp_path):
    environ = {"OMP_NUM_THREADS": "3"}
    unlimited = write(tmp_path, {"cpu.max": "max 100000"})
    many = affinity_cpus() + 1
    plan = plan_threads(4, requested=many, environ=environ, cgroup_root=unlimited)
    assert plan.threads == many and plan.source.startswith(f"{many} set explicitly (--worker-threads or --threads)")
    assert f"more than the {many - 1} CPUs given" in plan.source
    assert plan_threads(4, environ=environ) == ThreadPlan(3, "OMP_NUM_THREADS=3 in the environment")
    # A value OpenMP itself would not take as one count is ignored, not guessed at.
    assert "affinity mask" in plan_threads(1, environ={"OMP_NUM_THREADS": "2,1"}).source
    with pytest.raises(ValueError, match="at least 1"):
        plan_threads(1, requested=0)


def test_threads_spin_briefly_only_on_idle_cpus_they_own_outright(tmp_path):
    unlimited = write(tmp_path / "unlimited", {"cpu.max": "max 100000"})
    quota = write(tmp_path / "quota", {"cpu.max": "200000 100000"})
    cpus = affinity_cpus()
    two = ThreadPlan(2, "test")
    sizes = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    spare = max(0.0, cpus - 2)

    settings, why = openmp_environment(two, {}, busy=spare + 0.4, cgroup_root=unlimited)
    assert settings == sizes | {"GOMP_SPINCOUNT": str(SHORT_SPIN_COUNT)}
    assert why == f"GOMP_SPINCOUNT={SHORT_SPIN_COUNT}: {spare + 0.4:.1f} of the {cpus} CPUs given were busy at start"
    settings, why = openmp_environment(two, {}, busy=spare + 0.6, cgroup_root=unlimited)
    assert settings == sizes | {"OMP_WAIT_POLICY": "PASSIVE"} and why.endswith("were busy at start")
    for busy, root, reason in (
        (None, unlimited, "the CPUs' load could not be read"),
        (0.0, quota, "a cgroup CPU quota is in force"),
    ):
        settings, why = openmp_environment(two, {}, busy=busy, cgroup_root=root)
        assert settings["OMP_WAIT_POLICY"] == "PASSIVE" and why == f"OMP_WAIT_POLICY=PASSIVE: {reason}"
    settings, why = openmp_environment(ThreadPlan(1, "test"), {}, busy=0.0, cgroup_root=unlimited)
    assert settings["OMP_WAIT_POLICY"] == "PASSIVE" and why == "OMP_WAIT_POLICY=PASSIVE: one thread"


def test_the_operators_wait_setting_is_kept():
    plan = ThreadPlan(2, "test")
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "10000"}, {"KMP_BLOCKTIME": "0"}):
        settings, why = openmp_environment(plan, chosen, busy=0.0)
        assert settings == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
        assert why == f"{wait_policy(chosen)} (set by the operator)"
        assert wait_policy(chosen) == ", ".join(f"{k}={v}" for k, v in chosen.items())
    assert wait_policy({}) == "OpenMP's default waits (spin, then sleep)"
