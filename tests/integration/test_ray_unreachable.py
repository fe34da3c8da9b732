"""A server whose --ray-address reaches no Ray cluster: its audits fail UNAVAILABLE naming the option and the
address tried, promptly, and the server serves on. No cluster is started here, so these tests take seconds."""

from __future__ import annotations

import os
import socket
import time

import pytest

pytest.importorskip("ray")

from effcap.clients.errors import EffcapError  # noqa: E402
from effcap.clients.sdk import EffcapClient  # noqa: E402
from effcap.protos.v1 import spec_pb2  # noqa: E402

from .conftest import ServerProcess, digits_spec, wait_for  # noqa: E402

DIGITS = spec_pb2.DatasetRef(builtin="digits")


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def failure(server: ServerProcess, model) -> EffcapError:
    with EffcapClient(server.address) as client:
        operation = client.create_audit(client.upload(model), DIGITS, digits_spec("true", seeds=1, epochs=1))
        # Within two minutes: before the fix, ray.init retried a HOST:PORT with no head for over ten, the audit RUNNING.
        done = wait_for(lambda: (current := client.get_operation(operation.name)).done and current, timeout=120)
        with pytest.raises(EffcapError) as info:
            client.report_of(done)
        return info.value


# ray.init's bound in these servers' workers: short, so a TCP port that is no Ray head fails within seconds.
INIT_TIMEOUT_S = 4


@pytest.mark.parametrize("where", ["host_port", "auto", "not_ray"])
def test_an_unreachable_ray_cluster_fails_the_audit_unavailable_naming_ray_address(where, demo_files, tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    # `auto` reads Ray's session files under RAY_TMPDIR: an empty one holds no cluster (Ray's advice text case).
    environment["RAY_TMPDIR"] = str(tmp_path / "ray")
    environment["EFFCAP_RAY_INIT_TIMEOUT_S"] = str(INIT_TIMEOUT_S)
    # not_ray: a port that accepts TCP and never speaks Ray (the dashboard's port given by mistake).
    listener = socket.create_server(("127.0.0.1", 0)) if where == "not_ray" else None
    address = {
        "host_port": f"127.0.0.1:{closed_port()}",
        "auto": "auto",
        "not_ray": f"127.0.0.1:{listener.getsockname()[1] if listener else 0}",
    }[where]
    server = ServerProcess(tmp_path / "server", "--executor", "ray", "--ray-address", address, environment=environment)
    server.start()
    try:
        started = time.monotonic()
        error = failure(server, demo_files[0])
        assert (error.code, error.reason) == ("UNAVAILABLE", "RAY_UNREACHABLE"), str(error)
        assert f"--ray-address {address}" in str(error), str(error)
        assert "RAY_ADDRESS` environment variable" not in str(error)  # Ray's advice names Ray's options, not ours
        if where == "host_port":  # a refusal is immediate, and said so: no timeout is blamed
            assert "connection refused" in str(error) and " within " not in str(error), str(error)
        if where == "not_ray":  # ray.init retries such a port for minutes without the bound
            assert f"no Ray head answered within {INIT_TIMEOUT_S} s" in str(error), str(error)
            assert time.monotonic() - started < 60, "the audit waited past ray.init's bound"
        with EffcapClient(server.address) as client:
            client.wait_ready(timeout=10)  # the server is unharmed
    finally:
        server.stop()
        if listener is not None:
            listener.close()
