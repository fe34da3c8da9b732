"""`effcap serve --ready-file`: the address a client on this machine dials, written once the server listens.

Scripts, tests and supervisors wait for the file and pass its content to `--server`. The bound address is not
always one a client can dial: a server on the wildcard `0.0.0.0` (or `[::]`) listens on every interface, but
`0.0.0.0:PORT` is not a destination. For a wildcard host the file holds the loopback address of the same family,
which reaches the server from the machine it runs on; any other host is written as given, IPv6 in brackets.
"""

from __future__ import annotations

from pathlib import Path

# What `--host` may say to mean every interface, and the loopback address a local client dials instead.
WILDCARD_LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}


def dialable_address(host: str, port: int) -> str:
    """HOST:PORT for a client on this machine, from the host the server bound and the port it got."""
    bare = host.removeprefix("[").removesuffix("]")
    if bare in WILDCARD_LOOPBACK:
        return f"{WILDCARD_LOOPBACK[bare]}:{port}"
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def write_ready_file(path: Path, host: str, port: int) -> None:
    """The address, written to a temporary file and renamed: a reader never sees a partial line."""
    partial = path.with_suffix(".partial")
    partial.write_text(dialable_address(host, port) + "\n")
    partial.replace(path)
