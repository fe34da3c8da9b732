"""A real local Ray cluster for the Ray executor's tests: a head that runs no tasks and worker nodes of one CPU each.

Built with Ray's own `ray.cluster_utils.Cluster`, which starts each node's real processes (GCS, raylet, object
store, worker processes) on this machine with ports of its own, the way `ray start --head` and `ray start
--address` do, and removes a node by ending its processes. Session files go to a short temporary directory
(Unix socket paths have a 107-byte limit). The test process never connects as a driver.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

TASK_TITLE = "ray::run_batch_task"
NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 << 20, "include_dashboard": False}


class RayCluster:
    def __init__(self, worker_nodes: int = 2) -> None:
        from ray.cluster_utils import Cluster

        self.temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        # Ray's default session root, /tmp/ray, is shared with anything else on the machine: this cluster's files
        # (and the address file it writes) go to its own directory, for the servers started from here too.
        self._previous_tmpdir = os.environ.get("RAY_TMPDIR")
        os.environ["RAY_TMPDIR"] = self.temp_dir
        sessions = Path(self.temp_dir) / "ray"  # where Ray looks under RAY_TMPDIR
        sessions.mkdir()
        head = {"num_cpus": 0, "object_store_memory": 80 << 20, "include_dashboard": False, "temp_dir": str(sessions)}
        self._cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
        self.workers = [self.add_node() for _ in range(worker_nodes)]
        self.address = self._cluster.address

    def add_node(self):
        node = self._cluster.add_node(**NODE_ARGS)
        self._cluster.wait_for_nodes()
        return node

    def remove_node(self, node) -> None:
        """The whole node goes: its raylet, object store and worker processes (tasks running there die)."""
        self._cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def shutdown(self) -> None:
        self._cluster.shutdown()
        if self._previous_tmpdir is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = self._previous_tmpdir
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def task_pids() -> list[int]:
    """Ray worker processes now running a trial batch (Ray titles a busy worker `ray::<function>`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith(TASK_TITLE):
            pids.append(int(entry.name))
    return pids


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for_task(timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = task_pids()
        if pids:
            return pids[0]
        time.sleep(0.1)
    raise AssertionError("no Ray task started in time")
