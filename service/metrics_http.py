"""Serving /metrics under the rules the gRPC port follows: TLS and API keys, as a Prometheus scrape config expects.

The metrics name principals and the bytes each stores, so they are an admin's to read. The endpoint speaks TLS
whenever the server does (its --tls-cert/--tls-key; with --tls-client-ca a client certificate is required, as on
the gRPC port), and once any API key exists every scrape needs an admin's (`Authorization: Bearer TOKEN`, which
Prometheus sends from `authorization: {credentials_file: ...}`): 401 without a live key, 403 for a user's key.
Where it may listen at all is exposure.py's rule, applied by the server before it starts.

prometheus-client's own start_http_server does TLS but no authentication, and it shakes hands in its accept
loop, where one client that connects and says nothing stalls every scrape; here each connection shakes hands
on its own thread, within a timeout.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from effcap.service.auth.authenticator import BEARER
from effcap.service.auth.keys import KeyRing
from effcap.service.auth.tls import ServerTls

# A connection that has not finished its handshake and request in this long is closed.
CONNECTION_TIMEOUT_S = 10.0
CHALLENGE = 'Bearer realm="effcap metrics"'

StartResponse = Callable[..., object]
WsgiApp = Callable[[dict, StartResponse], Iterable[bytes]]


class AdminTokenRequired:
    """WSGI middleware: once any API key exists, only a live admin key's bearer token gets through."""

    def __init__(self, app: WsgiApp, keys: KeyRing) -> None:
        self._app = app
        self._keys = keys

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if not self._keys.any_issued():  # loopback, mutual TLS or --insecure: exposure.py allowed it
            return self._app(environ, start_response)
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header:
            return _refuse(start_response, 401, "an admin API key is required: send 'Authorization: Bearer TOKEN'")
        token = header[len(BEARER) :].strip() if header.lower().startswith(BEARER) else ""
        if not token:
            return _refuse(start_response, 401, "the Authorization header must be 'Bearer TOKEN'")
        key = self._keys.find(token)
        if key is None:
            return _refuse(start_response, 401, "the bearer token is not a key this server issued")
        if key.revoked:
            return _refuse(start_response, 401, f"the bearer token's key {key.id} ({key.principal}) was revoked")
        if not key.admin:
            return _refuse(start_response, 403, f"metrics are for admin keys; {key.principal}'s key is a user key")
        return self._app(environ, start_response)


def _refuse(start_response: StartResponse, status: int, message: str) -> list[bytes]:
    body = (message + "\n").encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if status == 401:
        headers.append(("WWW-Authenticate", CHALLENGE))
    start_response("401 Unauthorized" if status == 401 else "403 Forbidden", headers)
    return [body]


class _QuietHandler(WSGIRequestHandler):
    """Scrapes every few seconds would flood standard error; the gRPC access log is the one that matters."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class MetricsHttpServer(ThreadingWSGIServer):
    """A thread per connection, which shakes hands (TLS) on that thread within CONNECTION_TIMEOUT_S."""

    tls: ssl.SSLContext | None = None

    def finish_request(self, request: socket.socket, client_address: object) -> None:
        request.settimeout(CONNECTION_TIMEOUT_S)
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except OSError:  # a plaintext client, a certificate the CA did not sign, or no handshake in time
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


def tls_context(tls: ServerTls) -> ssl.SSLContext:
    """The server's certificate; with a client CA, client certificates it signed are required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(tls.cert, tls.key)
        if tls.client_ca is not None:
            context.load_verify_locations(tls.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as error:
        raise SystemExit(f"cannot serve metrics over TLS: {error}") from None
    return context


def startup_message(tls: bool, host: str, port: int, keys_issued: bool) -> str:
    """The line the server logs once /metrics listens: a URL to paste (an IPv6 host in brackets, RFC 3986), and a
    scrape rule that stays true while the server runs, when the first key may be created (AdminTokenRequired)."""
    bare = host.removeprefix("[").removesuffix("]")
    url = f"{'https' if tls else 'http'}://{f'[{bare}]' if ':' in bare else bare}:{port}/metrics"
    access = "an admin API key" if keys_issued else "no API key until one is created, then an admin's"
    return f"metrics on {url}, scrapes need {access}"


def serve_metrics(
    registry: CollectorRegistry, host: str, port: int, tls: ServerTls | None, keys: KeyRing
) -> MetricsHttpServer:
    """Serve /metrics on a daemon thread (port 0 picks a free one: `server_address[1]`)."""
    context = tls_context(tls) if tls is not None else None
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except OSError as error:
        raise SystemExit(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from None

    class Server(MetricsHttpServer):
        address_family = family

    try:
        server = Server((host, port), _QuietHandler)
    except OSError as error:
        raise SystemExit(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from None
    server.tls = context
    server.set_app(AdminTokenRequired(make_wsgi_app(registry), keys))
    threading.Thread(target=server.serve_forever, name="effcap-metrics", daemon=True).start()
    return server
