"""One server per port and per data directory, request ids kept on cache hits, a log line per audit (issue 16)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import spec_pb2

from .conftest import ServerProcess, digits_spec, wait_for

DIGITS = spec_pb2.DatasetRef(builtin="digits")


def second_serve(*args: str) -> subprocess.CompletedProcess:
    """`effcap serve` expected to refuse at once (it would otherwise run until the timeout)."""
    command = [sys.executable, "-m", "effcap.clients.cli", "serve", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_second_server_on_a_taken_port_is_refused(server: ServerProcess, tmp_path):
    host, port = server.address.rsplit(":", 1)
    result = second_serve("--host", host, "--port", port, "--data-dir", str(tmp_path / "other"))
    assert result.returncode != 0
    assert f"cannot listen on {host}:{port}" in result.stderr and "taken" in result.stderr


def test_a_second_server_on_the_same_data_dir_exits_naming_the_holder(server: ServerProcess):
    result = second_serve("--port", "0", "--data-dir", str(server.data_dir))
    assert result.returncode != 0
    assert f"in use by another effcap server (pid {server.process.pid})" in result.stderr


def test_the_data_dir_is_free_again_once_its_server_stops(tmp_path):
    first = ServerProcess(tmp_path / "data").start()
    first.stop()
    second = ServerProcess(tmp_path / "data").start()  # asserts it started
    try:
        assert second.process.poll() is None
    finally:
        second.stop()


def test_a_request_id_answered_from_the_cache_is_kept(client: EffcapClient, demo_files):
    model = client.upload(demo_files[0])
    spec = digits_spec("true", seeds=1, epochs=1, seed=4242)
    original = client.wait(client.create_audit(model, DIGITS, spec, request_id="first-hour-original").name)
    cached = client.create_audit(model, DIGITS, spec, request_id="first-hour-repeat")
    assert cached.done and cached.name == original.name
    # The same request_id again, even bypassing the cache, is the same audit (AIP-155), not a new one ...
    again = client.create_audit(model, DIGITS, spec, request_id="first-hour-repeat", skip_cache=True)
    assert again.name == original.name
    # ... and a different request may not take the id over.
    with pytest.raises(EffcapError) as info:
        client.create_audit(
            model, DIGITS, digits_spec("true", seeds=1, epochs=2, seed=4242), request_id="first-hour-repeat"
        )
    assert info.value.reason == "REQUEST_ID_REUSED"


def test_the_server_logs_each_audit_created_started_and_finished(
    server: ServerProcess, client: EffcapClient, demo_files
):
    model = client.upload(demo_files[0])
    operation = client.create_audit(model, DIGITS, digits_spec("true", seeds=1, epochs=1, seed=4343))
    client.wait(operation.name)
    name = operation.name
    log = wait_for(lambda: (text := server.log()) and f"audit {name} finished" in text and text, timeout=30)
    assert f"audit {name} created: randomization" in log
    assert f"audit {name} started: attempt 1, worker pid" in log
    assert f"audit {name} finished SUCCEEDED, ran " in log and " s queued" in log
    cancelled = client.create_audit(model, DIGITS, digits_spec("true", seeds=1, epochs=300, seed=4344))
    client.cancel(cancelled.name)
    assert wait_for(lambda: f"audit {cancelled.name} finished CANCELLED" in server.log(), timeout=30)


def test_a_taken_metrics_port_is_refused_with_a_message_not_a_traceback(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = second_serve("--port", "0", "--data-dir", str(tmp_path / "data"), "--metrics-port", str(port))
    assert result.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_a_server_that_could_run_no_audit_is_refused():
    for count in ("0", "-1"):
        result = second_serve("--max-running-audits", count)
        assert result.returncode == 2 and "--max-running-audits: must be at least 1" in result.stderr


def test_scores_out_without_memorization_scores_is_refused_before_anything_runs(demo_files, tmp_path):
    model, _ = demo_files
    command = [sys.executable, "-m", "effcap.clients.cli", "audit", str(model), "--data", "builtin:digits", "--local"]
    result = subprocess.run([*command, "--scores-out", str(tmp_path / "s.npz")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--scores-out needs --analyses to include memorization_scores" in result.stderr
    assert not (tmp_path / "s.npz").exists()
