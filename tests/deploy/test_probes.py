"""The health probes exactly as the image and the Deployment run them, against a TLS server whose certificate
is made by deploy/README.md's openssl commands: the recipe, the probe commands and their exit codes together.

The TLS server is grpc's own health servicer (the effcap server's TLS options come with issue 13); what is under
test is the probes' side: `effcap health`, the CA, the server name, and the shell around them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.deploy.dockerfile_lint import final_stage
from tests.deploy.schemas import DEPLOY, KUBERNETES, load_documents

SECRETS_DIR = "/run/secrets/effcap-tls/"
IMAGE_ADDRESS = "127.0.0.1:50051"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the README's recipe needs openssl")


def readme_certificate_commands() -> str:
    readme = (DEPLOY / "README.md").read_text()
    block = re.search(r"<!-- certificates -->\n```sh\n(.*?)```\n<!-- /certificates -->", readme, re.S)
    assert block, "deploy/README.md has no certificates block"
    return block.group(1)


class TlsHealthServer:
    """grpc's health servicer behind TLS on a free loopback port."""

    def __init__(self, secrets: Path) -> None:
        pair = ((secrets / "tls.key").read_bytes(), (secrets / "tls.crt").read_bytes())
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.servicer = health.HealthServicer()
        self.servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([pair]))
        self.server.start()


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/secrets/ as the README's commands make it, in a scratch repository root."""
    root = tmp_path_factory.mktemp("repository")
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_certificate_commands()], cwd=root, check=True, capture_output=True
    )
    return root / "deploy" / "secrets"


@pytest.fixture(scope="module")
def tls_server(secrets: Path) -> Iterator[TlsHealthServer]:
    server = TlsHealthServer(secrets)
    yield server
    server.server.stop(None)


def run_probe(command: str, secrets: Path, address: str) -> int:
    """A probe's shell command with the mounted paths and the server's port made local; its exit status."""
    command = command.replace(SECRETS_DIR, f"{secrets}/").replace(IMAGE_ADDRESS, address)
    command = re.sub(r"\beffcap health\b", f"{sys.executable} -m effcap.clients.cli health", command)
    environment = {**os.environ, "EFFCAP_TLS_SERVER_NAME": "localhost"}  # the images' default
    return subprocess.run(["sh", "-c", command], env=environment, capture_output=True, timeout=60).returncode


def image_healthcheck() -> str:
    (check,) = [
        i.value for i in final_stage((DEPLOY / "images" / "cpu.Dockerfile").read_text()) if i.name == "HEALTHCHECK"
    ]
    return check.split(" CMD ", 1)[1]


def deployment_probes() -> dict[str, str]:
    (deployment,) = [d for d in load_documents(KUBERNETES / "server.yaml") if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    probes = ("startupProbe", "readinessProbe", "livenessProbe")
    return {probe: container[probe]["exec"]["command"][-1] for probe in probes}


def test_the_readme_certificate_names_localhost_and_the_service(secrets: Path) -> None:
    text = subprocess.run(
        ["openssl", "x509", "-in", secrets / "tls.crt", "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:localhost" in text and "DNS:effcap.effcap.svc" in text


def test_every_probe_passes_on_a_serving_server(secrets: Path, tls_server: TlsHealthServer) -> None:
    address = f"127.0.0.1:{tls_server.port}"
    assert run_probe(image_healthcheck(), secrets, address) == 0
    for probe, command in deployment_probes().items():
        assert run_probe(command, secrets, address) == 0, probe


def test_not_serving_is_unready_and_unhealthy_but_alive(secrets: Path, tls_server: TlsHealthServer) -> None:
    """A full data directory (NOT_SERVING) takes the pod out of the Service; a restart would not help it."""
    address = f"127.0.0.1:{tls_server.port}"
    tls_server.servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        probes = deployment_probes()
        assert run_probe(probes["readinessProbe"], secrets, address) == 1
        assert run_probe(probes["livenessProbe"], secrets, address) == 0
        assert run_probe(image_healthcheck(), secrets, address) == 1
    finally:
        tls_server.servicer.set("", health_pb2.HealthCheckResponse.SERVING)


def test_no_answer_fails_every_probe_with_exit_1(secrets: Path) -> None:
    """Nothing listening: liveness fails too, and Docker's check exits 1, never its reserved 2."""
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    assert run_probe(image_healthcheck(), secrets, address) == 1
    for probe, command in deployment_probes().items():
        assert run_probe(command, secrets, address) != 0, probe
