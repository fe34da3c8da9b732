"""The metrics endpoint on its own (real sockets, a real key store): mutual TLS as on the gRPC port, and the rule
that keys, once issued, are needed for every scrape."""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from effcap.clients.cli import main
from effcap.service.auth.keys import KeyRing
from effcap.service.auth.tls import ServerTls
from effcap.service.metrics_http import MetricsHttpServer, serve_metrics, startup_message

from ..tls_material import CertificatePair, TlsMaterial, write_tls_material


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return write_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def keys(tmp_path) -> Iterator[KeyRing]:
    ring = KeyRing(tmp_path / "store.sqlite3")
    yield ring
    ring.close()


def serve(tls: ServerTls | None, keys: KeyRing) -> MetricsHttpServer:
    registry = CollectorRegistry()
    Counter("effcap_test_scrapes", "a metric to find", registry=registry).inc()
    return serve_metrics(registry, "127.0.0.1", 0, tls, keys)


def scrape(server: MetricsHttpServer, tls: TlsMaterial | None, pair: CertificatePair | None, token: str | None) -> int:
    """The status of a scrape; OSError or HTTPException when the connection is refused."""
    scheme = "https" if tls else "http"
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{server.server_address[1]}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=tls.ca) if tls else None
    if context is not None and pair is not None:
        context.load_cert_chain(pair.cert, pair.key)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            assert b"effcap_test_scrapes_total 1.0" in answer.read()
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_mutual_tls_metrics_need_a_client_certificate_from_the_ca(tls: TlsMaterial, keys: KeyRing):
    server = serve(ServerTls(tls.server.cert, tls.server.key, client_ca=tls.ca), keys)
    try:
        assert scrape(server, tls, tls.client, None) == 200  # no key issued: the certificate is the authentication
        for pair in (None, tls.stranger):
            with pytest.raises((OSError, http.client.HTTPException)):
                scrape(server, tls, pair, None)
        _, root = keys.create("root", admin=True)
        assert scrape(server, tls, tls.client, None) == 401  # a key exists: a certificate's subject is no admin
        assert scrape(server, tls, tls.client, root) == 200
    finally:
        server.shutdown()
        server.server_close()


def test_a_plaintext_loopback_endpoint_closes_with_the_first_key(keys: KeyRing):
    server = serve(None, keys)
    try:
        assert scrape(server, None, None, None) == 200
        _, user = keys.create("alice")
        assert scrape(server, None, None, None) == 401
        assert scrape(server, None, None, user) == 403
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreadable_certificate_stops_the_start_with_a_message(tmp_path, keys: KeyRing):
    with pytest.raises(SystemExit, match="cannot serve metrics over TLS"):
        serve(ServerTls(tmp_path / "missing.crt", tmp_path / "missing.key"), keys)


def test_the_start_up_line_brackets_ipv6_and_states_a_rule_that_holds_once_a_key_is_created():
    assert startup_message(False, "::1", 9464, False).startswith("metrics on http://[::1]:9464/metrics, ")
    assert startup_message(True, "[::1]", 9464, True).startswith("metrics on https://[::1]:9464/metrics, ")
    keyed = "metrics on https://0.0.0.0:1/metrics, scrapes need an admin API key"
    assert startup_message(True, "0.0.0.0", 1, True) == keyed
    open_until = startup_message(False, "127.0.0.1", 1, False)
    assert open_until.endswith("scrapes need no API key until one is created, then an admin's"), open_until


def test_a_metrics_host_without_a_metrics_port_is_an_error_naming_both(tmp_path, capsys):
    data_dir = tmp_path / "never-created"
    assert main(["serve", "--data-dir", str(data_dir), "--port", "0", "--metrics-host", "0.0.0.0"]) != 0
    error = capsys.readouterr().err
    assert "--metrics-host needs --metrics-port" in error, error
    assert not data_dir.exists()  # refused before anything started
