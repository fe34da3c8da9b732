"""Who is calling: a bearer token, else a verified client certificate, else anonymous where that is allowed.

Anonymous callers are served only while the data directory has never issued a key, and then only from
loopback (or anywhere, when the operator started the server with --insecure). So a demo or a first
`effcap serve` needs no set-up, and the first `effcap admin keys create` closes the door for everyone.
Health checks need no identity: load balancers and orchestrators probe without one.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote

import grpc

from effcap.service.auth.keys import KeyRing
from effcap.service.auth.principal import ANONYMOUS, Principal
from effcap.service.errors import ApiError

UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/",)
BEARER = "bearer "


def unauthenticated(reason: str, message: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, reason, message)


class Authenticator:
    def __init__(self, keys: KeyRing, anonymous_from_anywhere: bool = False) -> None:
        self._keys = keys
        self._anonymous_from_anywhere = anonymous_from_anywhere

    def __call__(self, method: str, context: grpc.ServicerContext) -> Principal:
        """The caller's principal, or UNAUTHENTICATED (an ApiError) saying what is missing."""
        if method.startswith(UNAUTHENTICATED_PREFIXES):
            return ANONYMOUS
        token = _bearer_token(context)
        keys_issued = self._keys.any_issued()
        # A server that never issued a key ignores tokens (a client's EFFCAP_TOKEN meant for another server).
        if token is not None and keys_issued:
            key = self._keys.find(token)
            if key is None:
                raise unauthenticated("TOKEN_UNKNOWN", "the bearer token is not a key this server issued")
            if key.revoked:
                raise unauthenticated("TOKEN_REVOKED", f"the bearer token's key {key.id} ({key.principal}) was revoked")
            return key.as_principal()
        subject = _certificate_subject(context)
        if subject is not None:
            return Principal(subject)
        if keys_issued:
            raise unauthenticated(
                "TOKEN_REQUIRED",
                "this server requires an API key: pass --token or set EFFCAP_TOKEN (from `effcap admin keys create`)",
            )
        if self._anonymous_from_anywhere or _is_loopback(context.peer()):
            return ANONYMOUS
        raise unauthenticated(
            "TOKEN_REQUIRED", "anonymous calls are served on loopback only: pass --token or a client certificate"
        )


def _bearer_token(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            if not isinstance(value, str) or not value.lower().startswith(BEARER) or not value[len(BEARER) :].strip():
                raise unauthenticated("MALFORMED_AUTHORIZATION", "authorization metadata must be 'Bearer TOKEN'")
            return value[len(BEARER) :].strip()
    return None


def _certificate_subject(context: grpc.ServicerContext) -> str | None:
    """The verified client certificate's subject (only mutual TLS verifies one, so only it sets this)."""
    values = context.auth_context().get("x509_subject")
    if not values:
        return None
    subject = values[0]
    return subject.decode(errors="replace") if isinstance(subject, bytes) else str(subject)


def _is_loopback(peer: str) -> bool:
    """grpc peers look like ipv4:127.0.0.1:5000, ipv6:[::1]:5000 or unix:/path (local by definition)."""
    kind, _, rest = unquote(peer).partition(":")
    if kind == "unix":
        return True
    host = rest.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
