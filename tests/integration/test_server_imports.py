"""The server process imports neither torch nor scipy: inputs are inflated in capped child processes."""

from __future__ import annotations

import json
import subprocess
import sys

STARTS_AND_ANSWERS_HEALTH = """
import json, sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from effcap.service.server import EffcapServer, ServerConfig

server = EffcapServer(ServerConfig(Path(sys.argv[1]), port=0))
server.start()
with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
server.stop(grace=0)
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "scipy"))
print(json.dumps({"status": health_pb2.HealthCheckResponse.ServingStatus.Name(status), "heavy": heavy[:20]}))
"""


def test_importing_and_starting_the_server_leaves_torch_and_scipy_unimported(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", STARTS_AND_ANSWERS_HEALTH, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"status": "SERVING", "heavy": []}
