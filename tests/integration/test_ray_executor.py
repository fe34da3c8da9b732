"""The Ray executor through the real server on a real local Ray cluster (a head and two one-CPU worker nodes).

Every audit here is cut into batches of one trial (--max-batch-trials 1), so the two nodes share its batches;
the local executor cuts the same batches, which is what makes the reports equal bit for bit on the CPU.
On the shared 2-core development machine the cluster's start and the local reference alone take about two
minutes, so only the equality, cancel and local-restart tests are in the default suite; the worker-kill,
node-removal and Ray-restart tests are marked slow (`-m slow`).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

from effcap.clients.sdk import EffcapClient  # noqa: E402
from effcap.protos.v1 import audit_pb2, report_pb2, spec_pb2  # noqa: E402

from .conftest import ServerProcess, digits_spec, wait_for  # noqa: E402
from .ray_cluster import RayCluster, kill, task_pids, wait_for_task  # noqa: E402
from .test_full_audit import without_timings  # noqa: E402

SPLIT = ("--max-batch-trials", "1")
# Four batches of several seconds each on a busy 2-core machine: long enough to be caught mid-batch.
SPEC = digits_spec("true,random", seeds=2, epochs=20)
DIGITS = spec_pb2.DatasetRef(builtin="digits")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    running = RayCluster(worker_nodes=2)
    yield running
    running.shutdown()


@pytest.fixture
def ray_server(cluster: RayCluster, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own per test: a data directory shared between tests would hold the batches (and the
    cached report) of an earlier test's audit, and nothing would run."""
    server = ServerProcess(tmp_path / "ray-server", "--executor", "ray", "--ray-address", cluster.address, *SPLIT)
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def local_report(demo_files, tmp_path_factory: pytest.TempPathFactory) -> report_pb2.AuditReport:
    """SPEC's report from the local executor, with the same cut into batches."""
    server = ServerProcess(tmp_path_factory.mktemp("local-server"), *SPLIT).start()
    try:
        with EffcapClient(server.address) as client:
            operation = client.create_audit(client.upload(demo_files[0]), DIGITS, SPEC)
            return client.report_of(client.wait(operation.name))
    finally:
        server.stop()


def run(
    server: ServerProcess, model_path: Path, during=None
) -> tuple[report_pb2.AuditReport, list[audit_pb2.AuditEvent]]:
    """SPEC through `server`; `during()` is called once a Ray task of the audit is running."""
    with EffcapClient(server.address) as client:
        operation = client.create_audit(client.upload(model_path), DIGITS, SPEC)
        if during is not None:
            during()
        done = client.wait(operation.name)
        assert not done.HasField("error"), done.error.message
        return client.report_of(done), list(client.events(operation.name))


def full_log(server: ServerProcess) -> str:
    return (server.data_dir / "server.log").read_text()


def test_the_ray_report_equals_the_local_report(ray_server, local_report, demo_files):
    report, events = run(ray_server, demo_files[0])
    assert without_timings(report) == without_timings(local_report)
    assert "trial batches trained in Ray tasks" in report.environment.cpu_threads_source
    assert "Ray" not in local_report.environment.cpu_threads_source
    assert sum(e.HasField("trial_finished") for e in events) == 4
    workers = set(re.findall(r"finished in Ray worker (\d+)", full_log(ray_server)))
    assert len(workers) >= 2  # the batches were spread over processes (one per node here)


@pytest.mark.slow
def test_a_ray_worker_process_killed_mid_batch_is_retried(ray_server, local_report, demo_files):
    killed = []
    report, events = run(ray_server, demo_files[0], during=lambda: killed.append(kill(wait_for_task()) or True))
    assert killed
    assert without_timings(report) == without_timings(local_report)
    assert sum(e.HasField("trial_finished") for e in events) == 4  # each trial reported once


@pytest.mark.slow
def test_a_removed_worker_node_is_survived(cluster, ray_server, local_report, demo_files):
    def remove_a_node() -> None:
        wait_for_task()
        cluster.remove_node(cluster.workers[0])
        cluster.add_node()  # the operator's autoscaler replaces it; the batches retry on either node

    report, _ = run(ray_server, demo_files[0], during=remove_a_node)
    assert without_timings(report) == without_timings(local_report)


def test_cancel_stops_the_audits_ray_tasks(ray_server, demo_files):
    with EffcapClient(ray_server.address) as client:
        operation = client.create_audit(
            client.upload(demo_files[0]), DIGITS, digits_spec("true,random", seeds=2, epochs=100_000, seed=7)
        )
        wait_for_task()
        client.cancel(operation.name)
        wait_for(lambda: not task_pids(), timeout=60)
        assert client.get_audit(operation.name).state == audit_pb2.AUDIT_STATE_CANCELLED


@pytest.mark.parametrize("executor", ["local", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_restarted_audit_resumes_from_its_stored_batches(executor, request, local_report, demo_files, tmp_path):
    args = ()
    if executor == "ray":
        args = ("--executor", "ray", "--ray-address", request.getfixturevalue("cluster").address)
    server = ServerProcess(tmp_path / "server", *args, *SPLIT).start()
    try:
        with EffcapClient(server.address) as client:
            operation = client.create_audit(client.upload(demo_files[0]), DIGITS, SPEC)
            wait_for(lambda: list((tmp_path / "server" / "batches").rglob("*.json")), timeout=300)
            workers = server.worker_pids()
    finally:
        server.stop(signal.SIGKILL)
    # The orphaned worker stores the batch it was training, then finds the pipe broken and exits.
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=300)
    stored = {p: p.stat().st_ino for p in (tmp_path / "server" / "batches").rglob("*.json")}
    server.start()
    try:
        with EffcapClient(server.address) as client:
            done = client.wait(operation.name)
            report, events = client.report_of(done), list(client.events(operation.name))
    finally:
        server.stop()
    assert without_timings(report) == without_timings(local_report)
    # Batches stored before the restart were read back, not rerun (a rerun would replace the file).
    assert all(p.stat().st_ino == inode for p, inode in stored.items())
    log = full_log(server)
    assert log.count("trial batch of 1 trials: ran") == 4  # each batch trained exactly once over both attempts
    assert log.count("restored from the batch store") == len(stored) >= 1
    assert len(list((tmp_path / "server" / "batches").rglob("*.json"))) == 4
    assert sum(e.HasField("trial_finished") for e in events) == 4  # no trial reported twice
