"""The metrics endpoint under the gRPC port's rules, through the real server: TLS with the server's certificate,
an admin API key per scrape (as Prometheus sends it from `authorization`), and no plaintext beyond loopback."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from ..tls_material import TlsMaterial, write_tls_material
from .conftest import ServerProcess
from .test_hostile_calls import free_port
from .test_identity import create_key, effcap
from .test_tls import start_failure


class Scraped:
    def __init__(self, server: ServerProcess, tls: TlsMaterial, port: int, tokens: dict[str, str]) -> None:
        self.server = server
        self.tls = tls
        self.url = f"https://127.0.0.1:{port}/metrics"
        self.port = port
        self.tokens = tokens

    def scrape(self, token: str | None, timeout: float = 10) -> tuple[int, str, dict[str, str]]:
        """(status, body, headers) of a scrape that verifies the server with the test CA, as Prometheus's tls_config."""
        request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {token}"} if token else {})
        context = ssl.create_default_context(cafile=self.tls.ca)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
                return answer.status, answer.read().decode(), dict(answer.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    tls = write_tls_material(tmp_path_factory.mktemp("metrics-tls"))
    data_dir = tmp_path_factory.mktemp("metrics-keyed")
    tokens = {"root": create_key(data_dir, "root", "--admin"), "alice": create_key(data_dir, "alice")}
    tokens["gone"] = create_key(data_dir, "gone", "--admin")
    assert effcap("admin", "keys", "revoke", "gone", "--data-dir", str(data_dir)).returncode == 0
    port = free_port()
    server = ServerProcess(
        data_dir,
        "--tls-cert", str(tls.server.cert), "--tls-key", str(tls.server.key),
        "--metrics-port", str(port), "--metrics-host", "0.0.0.0",  # beyond loopback: allowed with TLS and keys
    ).start()  # fmt: skip
    yield Scraped(server, tls, port, tokens)
    server.stop()


def test_an_admin_key_over_tls_scrapes_the_metrics(scraped: Scraped):
    status, body, _ = scraped.scrape(scraped.tokens["root"])
    assert status == 200 and "effcap_audit_queue_depth" in body and "effcap_stored_bytes" in body
    assert f"metrics on https://0.0.0.0:{scraped.port}/metrics, scrapes need an admin API key" in scraped.server.log()


def test_a_plaintext_scrape_of_the_tls_port_gets_nothing(scraped: Scraped):
    request = urllib.request.Request(f"http://127.0.0.1:{scraped.port}/metrics")
    request.add_header("Authorization", f"Bearer {scraped.tokens['root']}")
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(request, timeout=10).read()


def test_a_scrape_without_an_admin_key_is_refused(scraped: Scraped):
    status, body, headers = scraped.scrape(None)
    assert (status, headers.get("WWW-Authenticate")) == (401, 'Bearer realm="effcap metrics"') and "admin" in body
    assert "effcap_" not in body
    status, body, _ = scraped.scrape(scraped.tokens["alice"])
    assert status == 403 and "alice" in body and "effcap_" not in body
    status, body, _ = scraped.scrape(scraped.tokens["gone"])  # an admin key, revoked
    assert status == 401 and "(gone) was revoked" in body
    assert scraped.scrape("effcap_" + "x" * 43)[0] == 401
    assert scraped.scrape(" ")[0] == 401  # "Bearer " and nothing


def test_a_connection_that_never_shakes_hands_does_not_stall_scrapes(scraped: Scraped):
    with socket.create_connection(("127.0.0.1", scraped.port)):
        started = time.monotonic()
        status, _, _ = scraped.scrape(scraped.tokens["root"], timeout=5)
        assert status == 200 and time.monotonic() - started < 5


def test_metrics_beyond_loopback_need_tls_and_authentication_or_insecure(tmp_path):
    plain = start_failure(tmp_path / "plain", "--metrics-port", "0", "--metrics-host", "0.0.0.0")
    assert "refusing to serve metrics on 0.0.0.0" in plain and "TLS (--tls-cert/--tls-key)" in plain, plain
    assert "--insecure" in plain and "stored bytes" in plain
    tls = write_tls_material(tmp_path / "tls")
    keyless = start_failure(
        tmp_path / "keyless",
        "--tls-cert", str(tls.server.cert), "--tls-key", str(tls.server.key),
        "--metrics-port", "0", "--metrics-host", "0.0.0.0",
    )  # fmt: skip
    assert "refusing to serve metrics on 0.0.0.0" in keyless and "authentication" in keyless, keyless
