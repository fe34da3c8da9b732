"""How a client proves who it is and checks whom it talks to: a bearer token and TLS (optionally with a
client certificate, for servers that require mutual TLS).

The token travels as `authorization: Bearer ...` metadata on every call, added by a channel interceptor
rather than by call credentials: grpc refuses call credentials on a plaintext channel, and a loopback
server that has issued keys still wants the token. Without `token`, EFFCAP_TOKEN is used if set.
"""

from __future__ import annotations

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
    this client's certificate, for mutual TLS."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise EffcapError(
                "--tls-cert and --tls-key go together: a client certificate and its key", "INVALID_ARGUMENT"
            )
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca), private_key=_read(self.key), certificate_chain=_read(self.cert)
        )


def open_channel(
    address: str, options: Sequence[tuple[str, Any]], token: str | None, tls: ClientTls | None
) -> grpc.Channel:
    """A channel to `address`, over TLS when `tls` is given, sending `token` (or $EFFCAP_TOKEN) with every call."""
    if tls is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        channel = grpc.secure_channel(address, tls.credentials(), options=options)
    token = token or os.environ.get(TOKEN_VARIABLE) or None
    return grpc.intercept_channel(channel, BearerToken(token)) if token else channel


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise EffcapError(f"{path}: {error.strerror}", "INVALID_ARGUMENT") from None


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
