"""`effcap serve --host/--metrics-host`: one host, written either way, in the form each listener needs.

gRPC binds `HOST:PORT`, so an IPv6 host must be bracketed (`[::1]:50051`; `::1:50051` is no address), while the
metrics endpoint hands the host to a socket, which wants it bare (`::1`). Users write both forms for both
options, so both are accepted and normalised here, once; a host that is neither form is refused naming the
option, instead of reaching gRPC, whose only answer ("the port is taken") blames the port.
"""

from __future__ import annotations

import ipaddress

from effcap.clients.errors import EffcapError


def bare_host(text: str, option: str) -> str:
    """The host without brackets: `::1` for `::1` or `[::1]`, names and IPv4 as given ('' binds every interface)."""
    bracketed = text.startswith("[") and text.endswith("]")
    bare = text[1:-1] if bracketed else text
    if ":" in bare or bracketed:
        try:
            ipaddress.IPv6Address(bare)
        except ValueError:
            raise _malformed(text, option) from None
    elif "[" in bare or "]" in bare or any(character.isspace() for character in bare):
        raise _malformed(text, option)
    return bare


def grpc_host(text: str, option: str = "--host") -> str:
    """The host as gRPC's `HOST:PORT` needs it: an IPv6 address in brackets."""
    bare = bare_host(text, option)
    return f"[{bare}]" if ":" in bare else bare


def _malformed(text: str, option: str) -> EffcapError:
    forms = "a name, an IPv4 address or an IPv6 one (::1 or [::1]), without the port"
    field = option.removeprefix("--").replace("-", "_")
    return EffcapError(f"{option} {text!r} is not a host: give {forms}", "INVALID_ARGUMENT", field=field)
