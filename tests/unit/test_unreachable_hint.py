"""When no server answers, the hint fits the command: `--local` only where the command has it (audit, check);
`effcap health` suggested it, and health has no such option."""

from __future__ import annotations

import socket

import pytest

from effcap.clients.cli import _parser, error_text, main
from effcap.clients.errors import EffcapError


def closed_address() -> str:
    """A loopback HOST:PORT nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize(
    "words", [["health", "--timeout", "2"], ["report", "audits/0"], ["artifacts", "delete", "sha256:" + "0" * 64]]
)
def test_a_command_without_local_is_not_told_to_use_it(words, capsys):
    assert main([*words, "--server", closed_address()]) == 2
    error = capsys.readouterr().err
    assert "effcap serve" in error, error  # the hint is there
    assert "--local" not in error, error


@pytest.mark.parametrize("command", [["audit", "m.safetensors"], ["check", "--policy", "p.yaml"]])
def test_audit_and_check_add_local_to_the_hint(command):
    message = "UNAVAILABLE: connection refused (is a server running there?)"
    unreachable = EffcapError(message, "UNAVAILABLE", unreachable=True)
    remote = _parser().parse_args(command)
    assert error_text(unreachable, remote).endswith("; or run it in this process, with no server: --local")
    refused = EffcapError("PERMISSION_DENIED: not yours", "PERMISSION_DENIED")  # the server answered: no hint
    assert error_text(refused, remote) == str(refused)
