"""`effcap health`, the probe the images and Kubernetes manifests run: exit codes against real servers.

Plaintext: the real effcap server. TLS: grpc's own health servicer behind TLS with a throwaway CA made here (the
effcap server's TLS options arrive with issue 13), to check the probe's certificate and server-name handling.
"""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.integration.conftest import ServerProcess

CLI = [sys.executable, "-m", "effcap.clients.cli", "health"]
SERVER_NAME = "effcap.test"  # the certificate's only name: a probe dialling 127.0.0.1 must name it


def effcap_health(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_a_serving_server_exits_0(server: ServerProcess) -> None:
    result = effcap_health("--server", server.address)
    assert (result.returncode, result.stdout) == (0, "SERVING\n"), result.stderr


def test_each_effcap_service_is_serving(server: ServerProcess) -> None:
    result = effcap_health("--server", server.address, "--service", "effcap.v1.AuditService")
    assert (result.returncode, result.stdout) == (0, "SERVING\n"), result.stderr


def test_an_unknown_service_exits_1(server: ServerProcess) -> None:
    result = effcap_health("--server", server.address, "--service", "no.such.Service")
    assert (result.returncode, result.stdout) == (1, "SERVICE_UNKNOWN\n"), result.stderr


def test_no_server_exits_2_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = effcap_health("--server", f"127.0.0.1:{port}", "--timeout", "2")
    assert result.returncode == 2
    assert "UNAVAILABLE" in result.stderr or "DEADLINE_EXCEEDED" in result.stderr


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None, issuer_key, ca: bool):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_health_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A TLS server with grpc's health servicer, SERVING; yields its address and the CA certificate's path."""
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("effcap test CA", ca_key, None, ca_key, ca=True)
    leaf = _certificate(SERVER_NAME, server_key, ca, ca_key, ca=False)
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ca_path = tmp_path_factory.mktemp("tls") / "ca.crt"
    ca_path.write_bytes(_pem(ca))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, _pem(leaf))]))
    server.start()
    yield f"127.0.0.1:{port}", ca_path
    server.stop(None)


def test_tls_with_the_ca_and_server_name_exits_0(tls_health_server: tuple[str, Path]) -> None:
    address, ca = tls_health_server
    result = effcap_health("--server", address, "--tls-ca", str(ca), "--tls-server-name", SERVER_NAME)
    assert (result.returncode, result.stdout) == (0, "SERVING\n"), result.stderr


def test_tls_with_the_system_roots_and_a_token_like_every_client_command(tls_health_server: tuple[str, Path]) -> None:
    address, ca = tls_health_server
    # --tls verifies with the system's roots, which grpc reads from this variable when it is set.
    roots = {**os.environ, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(ca)}
    command = [*CLI, "--server", address, "--tls", "--tls-server-name", SERVER_NAME, "--token", "unused"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=roots)
    assert (result.returncode, result.stdout) == (0, "SERVING\n"), result.stderr


def test_tls_refuses_a_certificate_not_issued_for_the_name_dialled(tls_health_server: tuple[str, Path]) -> None:
    address, ca = tls_health_server
    result = effcap_health("--server", address, "--tls-ca", str(ca), "--timeout", "3")
    assert result.returncode == 2 and result.stdout == ""


def test_plaintext_to_a_tls_server_exits_2(tls_health_server: tuple[str, Path]) -> None:
    result = effcap_health("--server", tls_health_server[0], "--timeout", "3")
    assert result.returncode == 2 and result.stdout == ""


def test_a_missing_ca_file_names_the_option(tmp_path: Path) -> None:
    result = effcap_health("--tls-ca", str(tmp_path / "absent.crt"))
    assert result.returncode == 2 and "--tls-ca" in result.stderr
