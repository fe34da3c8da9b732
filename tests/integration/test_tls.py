"""TLS, mutual TLS and where the server agrees to listen, through the real server and the real CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from effcap.clients.credentials import ClientTls
from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import audit_pb2, spec_pb2

from ..tls_material import TlsMaterial, write_tls_material
from .conftest import ServerProcess
from .test_identity import create_key, refused
from .test_lifecycle import ENDLESS

NOWHERE = "audits/" + "0" * 32


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return write_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tls: TlsMaterial, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("tls-server"), "--tls-cert", str(tls.server.cert), "--tls-key", str(tls.server.key)
    )
    yield server.start()
    server.stop()


def test_a_tls_server_answers_clients_that_verify_it_and_no_plaintext(tls: TlsMaterial, tls_server: ServerProcess):
    with EffcapClient(tls_server.address, tls=ClientTls(ca=tls.ca)) as client:
        refused(lambda: client.get_audit(NOWHERE))  # an answer from the server: NOT_FOUND
    with EffcapClient(tls_server.address, timeout=5, reconnect_budget_s=0) as plaintext:
        assert "--tls-ca" in str(refused(lambda: plaintext.get_audit(NOWHERE), "UNAVAILABLE"))  # what to add
    with EffcapClient(tls_server.address, timeout=5, tls=ClientTls(ca=tls.stranger.cert)) as unverified:
        refused(lambda: unverified.get_audit(NOWHERE), "UNAVAILABLE")  # the server's certificate is not from that CA
    report = cli_report(tls_server.address, "--tls-ca", str(tls.ca))
    assert report.returncode == 2 and "NOT_FOUND" in report.stderr, report.stderr


def cli_report(address: str, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "effcap.clients.cli", "report", NOWHERE, "--server", address, *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_tls_server_name_checks_the_certificate_against_that_name(tls: TlsMaterial, tls_server: ServerProcess):
    # The certificate names localhost and 127.0.0.1, and the client dials 127.0.0.1: only the option decides.
    named = cli_report(tls_server.address, "--tls-ca", str(tls.ca), "--tls-server-name", "localhost")
    assert named.returncode == 2 and "NOT_FOUND" in named.stderr, named.stderr  # an answer from the server
    other = cli_report(tls_server.address, "--tls-ca", str(tls.ca), "--tls-server-name", "elsewhere.example")
    assert other.returncode == 2 and "UNAVAILABLE" in other.stderr, other.stderr  # the handshake refused it


def test_mutual_tls_makes_the_certificate_subject_the_principal(tls: TlsMaterial, tmp_path, demo_files):
    server = ServerProcess(
        tmp_path / "mtls",
        "--tls-cert", str(tls.server.cert), "--tls-key", str(tls.server.key), "--tls-client-ca", str(tls.ca),
    ).start()  # fmt: skip
    try:
        alice_tls = ClientTls(ca=tls.ca, cert=tls.client.cert, key=tls.client.key)
        with EffcapClient(server.address, tls=alice_tls) as alice:
            operation = alice.create_audit(alice.upload(demo_files[0]), spec_pb2.DatasetRef(builtin="digits"), ENDLESS)
            alice.cancel(operation.name)
        with EffcapClient(server.address, timeout=5, tls=ClientTls(ca=tls.ca)) as no_certificate:
            refused(lambda: no_certificate.get_audit(operation.name), "UNAVAILABLE")  # the handshake fails
        stranger_tls = ClientTls(ca=tls.ca, cert=tls.stranger.cert, key=tls.stranger.key)
        with EffcapClient(server.address, timeout=5, tls=stranger_tls) as stranger:
            refused(lambda: stranger.get_audit(operation.name), "UNAVAILABLE")
        # A token beats the certificate: an admin key sees alice's audit, a user key does not.
        root = create_key(server.data_dir, "root", "--admin")
        erin = create_key(server.data_dir, "erin")
        with EffcapClient(server.address, tls=alice_tls, token=root) as admin:
            assert admin.get_audit(operation.name).state == audit_pb2.AUDIT_STATE_CANCELLED
        with EffcapClient(server.address, tls=alice_tls, token=erin) as other:
            refused(lambda: other.get_audit(operation.name))
        with EffcapClient(
            server.address, tls=alice_tls
        ) as alice:  # keys now exist; the certificate still authenticates
            assert alice.get_audit(operation.name).state == audit_pb2.AUDIT_STATE_CANCELLED
    finally:
        server.stop()
    activity = subprocess.run(
        [sys.executable, "-m", "effcap.clients.cli", "admin", "log", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "CN=alice,O=effcap-tests" in activity.stdout and "create" in activity.stdout, activity.stdout


def start_failure(tmp_path, *args: str) -> str:
    command = [sys.executable, "-m", "effcap.clients.cli", "serve", "--port", "0", "--data-dir", str(tmp_path), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    return result.stderr


def test_a_non_loopback_address_needs_tls_and_keys_or_insecure(tls: TlsMaterial, tmp_path):
    plain = start_failure(tmp_path / "plain", "--host", "0.0.0.0")
    assert "refusing to listen on 0.0.0.0" in plain and "TLS" in plain and "--insecure" in plain
    no_keys = start_failure(
        tmp_path / "no-keys", "--host", "0.0.0.0", "--tls-cert", str(tls.server.cert), "--tls-key", str(tls.server.key)
    )
    assert "authentication" in no_keys and "TLS (" not in no_keys
    insecure = ServerProcess(tmp_path / "insecure", "--host", "0.0.0.0", "--insecure").start()
    try:
        assert "WARNING" in insecure.log() and "--insecure" in insecure.log()
        # --ready-file: the wildcard is where the server listens, not an address to dial; loopback reaches it here.
        assert re.fullmatch(r"127\.0\.0\.1:\d+", insecure.address), insecure.address
        with EffcapClient(insecure.address) as client:
            client.wait_ready(timeout=10)
    finally:
        insecure.stop()
    keyed_dir = tmp_path / "keyed"
    keyed_dir.mkdir()
    create_key(keyed_dir, "ops")
    exposed = ServerProcess(
        keyed_dir, "--host", "0.0.0.0", "--tls-cert", str(tls.server.cert), "--tls-key", str(tls.server.key)
    ).start()
    try:
        with EffcapClient(exposed.address, tls=ClientTls(ca=tls.ca)) as anonymous:
            refused(lambda: anonymous.get_audit(NOWHERE), "UNAUTHENTICATED")
    finally:
        exposed.stop()


def test_a_client_certificate_needs_its_key(tls: TlsMaterial):
    with pytest.raises(EffcapError) as info:
        EffcapClient("127.0.0.1:1", tls=ClientTls(ca=tls.ca, cert=tls.client.cert))
    assert "--tls-key" in str(info.value)
