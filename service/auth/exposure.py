"""Whether the server may listen where it was asked to: loopback always; other addresses only behind TLS
and authentication (API keys issued, or client certificates required), unless the operator says --insecure."""

from __future__ import annotations

import ipaddress
import logging

from effcap.service.auth.tls import ServerTls

log = logging.getLogger("effcap.service")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that resolves elsewhere, or a wildcard


def check_exposure(
    host: str,
    tls: ServerTls | None,
    keys_issued: bool,
    insecure: bool,
    action: str = "listen",
    risk: str = "could read and delete every audit",
) -> None:
    """Refuse (SystemExit saying what is missing) to expose an open server; warn when --insecure overrides.

    `action` and `risk` word the refusal for an endpoint other than the gRPC port (the metrics')."""
    if is_loopback_host(host):
        return
    missing = []
    if tls is None:
        missing.append("TLS (--tls-cert/--tls-key)")
    if not keys_issued and (tls is None or tls.client_ca is None):
        missing.append(
            "authentication (an API key from `effcap admin keys create`, or client certificates with --tls-client-ca)"
        )
    if not missing:
        return
    if not insecure:
        raise SystemExit(
            f"refusing to {action} on {host}, which is not loopback, without {' and '.join(missing)}: anyone who can "
            f"reach it {risk}. Add them, or pass --insecure to accept that"
        )
    without = " and ".join(missing)
    log.warning("--insecure: %s on %s without %s; anyone who can reach it %s", action, host, without, risk)
