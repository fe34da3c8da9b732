"""How a client proves who it is and checks whom it talks to: a bearer token and TLS (optionally with a
client certificate, for servers that require mutual TLS).

The token travels as `authorization: Bearer ...` metadata on every call, added by a channel interceptor
rather than by call credentials: grpc refuses call credentials on a plaintext channel, and a loopback
server that has issued keys still wants the token. Without `token`, EFFCAP_TOKEN is used if set.

Every command that calls a server takes the same options, from `add_connection_arguments` and read back by
`connection_from_args`: a user who learnt them on one command has them on all.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from effcap.clients.errors import EffcapError

TOKEN_VARIABLE = "EFFCAP_TOKEN"


@dataclass(frozen=True)
class ClientTls:
    """TLS to the server: `ca` verifies its certificate (None: the system's roots); `cert` and `key` are
    this client's certificate, for mutual TLS; `server_name` is the name the certificate must be issued for
    (None: the host of the address dialled), for a server reached by an address its certificate does not name."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise EffcapError(
                "--tls-cert and --tls-key go together: a client certificate and its key",
                "INVALID_ARGUMENT",
                field="tls_key" if self.key is None else "tls_cert",
            )
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "tls_ca"),
            private_key=_read(self.key, "tls_key"),
            certificate_chain=_read(self.cert, "tls_cert"),
        )


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--token and the TLS options, on a command that calls a server (its --server is the command's own)."""
    group = parser.add_argument_group("connecting to the server (any --tls option connects over TLS)")
    group.add_argument("--token", help=f"API key token (default: ${TOKEN_VARIABLE})")
    group.add_argument("--tls", action="store_true", help="verify the server with the system's CAs")
    group.add_argument("--tls-ca", type=Path, help="verify the server with this CA certificate (PEM)")
    group.add_argument("--tls-cert", type=Path, help="client certificate for mutual TLS (PEM; with --tls-key)")
    group.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    group.add_argument(
        "--tls-server-name", help="check the server's certificate against this name instead of the address's host"
    )


# The options add_connection_arguments adds, by their argparse names.
CONNECTION_OPTIONS = ("token", "tls", "tls_ca", "tls_cert", "tls_key", "tls_server_name")


def connection_options_given(args: argparse.Namespace) -> list[str]:
    """The connection options on the command line (as typed: `--tls-ca`), for a command that may not connect."""
    return [f"--{name.replace('_', '-')}" for name in CONNECTION_OPTIONS if getattr(args, name)]


def connection_from_args(args: argparse.Namespace) -> tuple[str | None, ClientTls | None]:
    """(token, TLS) from the options add_connection_arguments added; any TLS option means TLS."""
    tls_options = (args.tls, args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)
    tls = None
    if any(tls_options):
        tls = ClientTls(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, server_name=args.tls_server_name)
    return args.token, tls


def open_channel(
    address: str, options: Sequence[tuple[str, Any]], token: str | None, tls: ClientTls | None
) -> grpc.Channel:
    """A channel to `address`, over TLS when `tls` is given, sending `token` (or $EFFCAP_TOKEN) with every call."""
    if tls is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        if tls.server_name:
            options = [*options, ("grpc.ssl_target_name_override", tls.server_name)]
        channel = grpc.secure_channel(address, tls.credentials(), options=options)
    token = token or os.environ.get(TOKEN_VARIABLE) or None
    return grpc.intercept_channel(channel, BearerToken(token)) if token else channel


def _read(path: Path | None, field: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        option = "--" + field.replace("_", "-")
        raise EffcapError(f"{option} {path}: {error.strerror}", "INVALID_ARGUMENT", field=field) from None


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer TOKEN` to every call's metadata."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return _CallDetails(  # type: ignore[return-value]
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Callable, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation: Callable, details: grpc.ClientCallDetails, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation: Callable, details: grpc.ClientCallDetails, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)
