"""A client survives a server restart: `effcap audit` and the SDK reconnect with backoff and resume the
event stream after the last sequence they saw, so no event arrives twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import audit_pb2

from .conftest import ServerProcess, wait_for
from .test_hostile_calls import free_port


def test_the_cli_and_the_sdk_follow_an_audit_across_a_server_restart(tmp_path, demo_files):
    port = free_port()
    server = ServerProcess(tmp_path / "server", "--port", str(port)).start()
    report_path = tmp_path / "report.json"
    audit = [
        sys.executable,
        "-m",
        "effcap.clients.cli",
        "audit",
        str(demo_files[0]),
        "--data",
        "builtin:digits",
        "--server",
        server.address,
    ]
    options = [
        "--conditions",
        "true,random",
        "--seeds",
        "1",
        "--epochs",
        "300",
        "--lr",
        "0.1",
        "--lr-decay",
        "1",
        "--no-progress",
    ]
    cli = subprocess.Popen(
        [*audit, *options, "--format", "json", "-o", str(report_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[audit_pb2.AuditEvent] = []
    outcome: dict[str, object] = {}
    try:
        with EffcapClient(server.address) as client:
            name = wait_for(
                lambda: [a.name for a in client.audits.ListAudits(audit_pb2.ListAuditsRequest(), timeout=10).audits],
                timeout=120,
            )[0]
            wait_for(lambda: client.get_audit(name).state == audit_pb2.AUDIT_STATE_RUNNING, timeout=120)

        def follow() -> None:
            with EffcapClient(server.address) as follower:
                outcome["operation"] = follower.wait(name, on_event=seen.append)

        follower = threading.Thread(target=follow)
        follower.start()
        wait_for(lambda: len(seen) >= 2, timeout=120)
        # SIGKILL: a graceful stop waits up to 5 s for open streams, time enough for a short audit to finish.
        server.stop(signal.SIGKILL)
        assert cli.poll() is None, "the CLI gave up when the server stopped"
        server.start()
        follower.join(timeout=600)
        stdout, stderr = cli.communicate(timeout=600)
        assert cli.returncode == 0, stderr
        with EffcapClient(server.address) as client:
            final = client.get_audit(name)
            stored = [event.sequence for event in client.events(name)]
    finally:
        if cli.poll() is None:
            cli.kill()
        server.stop()
    assert final.state == audit_pb2.AUDIT_STATE_SUCCEEDED
    assert final.progress.attempt == 2  # the audit really was interrupted and resumed
    assert int(json.loads(report_path.read_text())["model"]["parameterCount"]) > 0
    assert outcome["operation"].done
    assert [event.sequence for event in seen] == stored  # each stored event delivered once, none missed
    assert any("restarted" in event.message for event in seen)
