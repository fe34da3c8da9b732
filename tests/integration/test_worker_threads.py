"""Workers size their torch thread pool from the CPUs the server is given, and choose how threads wait (issue 17).

These tests are about threads, so the servers start without the suite's single-thread environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import report_pb2, spec_pb2
from effcap.service.executors.threads import available_cpus

from .conftest import ServerProcess, digits_spec

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# Two threads spin briefly or sleep at once depending on the load as the worker starts; either way, with its reason.
WAITS_CHOSEN = r"; (OMP_WAIT_POLICY=PASSIVE|GOMP_SPINCOUNT=10000): [^;]+$"
UNSET = {name: value for name, value in os.environ.items() if name not in THREAD_VARIABLES}


def environment_of_an_audit(server: ServerProcess, demo_files) -> report_pb2.Environment:
    server.start()
    try:
        with EffcapClient(server.address) as client:
            model, data = (client.upload(path) for path in demo_files)
            spec = digits_spec("true", seeds=1, epochs=2)
            operation = client.wait(client.create_audit(model, spec_pb2.DatasetRef(artifact=data), spec).name)
            return client.report_of(operation).environment
    finally:
        server.stop()


def test_each_worker_gets_its_share_of_the_cpus(tmp_path, demo_files):
    environment = environment_of_an_audit(
        ServerProcess(tmp_path, "--max-running-audits", "2", environment=UNSET), demo_files
    )
    cpus, _ = available_cpus()
    assert environment.cpu_threads == max(1, cpus // 2)
    assert "2 audit(s) at a time" in environment.cpu_threads_source
    assert re.search(WAITS_CHOSEN, environment.cpu_threads_source), environment.cpu_threads_source
    if environment.cpu_threads == 1:
        assert environment.cpu_threads_source.endswith("; OMP_WAIT_POLICY=PASSIVE: one thread")


def test_a_server_pinned_to_one_cpu_gives_its_worker_one_thread(tmp_path, demo_files):
    environment = environment_of_an_audit(ServerProcess(tmp_path, environment=UNSET, cpus={0}), demo_files)
    assert environment.cpu_threads == 1
    assert "affinity mask 1 CPUs" in environment.cpu_threads_source


def test_the_operators_settings_win(tmp_path, demo_files):
    chosen = UNSET | {"GOMP_SPINCOUNT": "1000"}
    environment = environment_of_an_audit(
        ServerProcess(tmp_path, "--worker-threads", "3", environment=chosen), demo_files
    )
    assert environment.cpu_threads == 3
    assert environment.cpu_threads_source.startswith("3 set explicitly (--worker-threads or --threads)")
    assert environment.cpu_threads_source.endswith("; GOMP_SPINCOUNT=1000 (set by the operator)")


def test_a_local_audit_takes_its_threads_flag_and_refuses_it_for_a_server(demo_files):
    model, data = demo_files
    command = [sys.executable, "-m", "effcap.clients.cli", "audit", str(model), "--data", str(data)]
    quick = ["--conditions", "true", "--seeds", "1", "--epochs", "1", "--no-progress", "--json"]
    local = subprocess.run([*command, "--local", "--threads", "2", *quick], capture_output=True, text=True, env=UNSET)
    assert local.returncode == 0, local.stderr
    environment = json.loads(local.stdout)["environment"]
    assert environment["cpuThreads"] == 2
    assert environment["cpuThreadsSource"].startswith("2 set explicitly")
    assert re.search(WAITS_CHOSEN, environment["cpuThreadsSource"]), environment["cpuThreadsSource"]
    remote = subprocess.run([*command, "--threads", "2", *quick], capture_output=True, text=True, env=UNSET)
    assert remote.returncode == 2 and "--worker-threads" in remote.stderr
