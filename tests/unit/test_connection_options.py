"""Every command that calls a server takes the same connection options (issue 13 review: `health` lacked --tls
and --token, `audit` and the others --tls-server-name), and they reach the channel."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from effcap.clients.cli import _parser
from effcap.clients.credentials import ClientTls, connection_from_args
from effcap.clients.errors import EffcapError

CONNECTION_OPTIONS = {"--token", "--tls", "--tls-ca", "--tls-cert", "--tls-key", "--tls-server-name"}
# Commands that call a server; any other command with a --server must take the options too (see below).
CLIENT_COMMANDS = {"audit", "check", "watch", "report", "health", "admin log", "artifacts delete"}
# Each command's words with its required arguments.
WORDS = {
    "audit": ["audit", "m.safetensors"],
    "check": ["check", "--policy", "p.yaml"],
    "watch": ["watch", "audits/0"],
    "report": ["report", "audits/0"],
    "health": ["health"],
    "admin log": ["admin", "log", "--server", "127.0.0.1:50051"],
    "artifacts delete": ["artifacts", "delete", "sha256:" + "0" * 64],
}


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its words, `admin keys create` included."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(commands(sub, f"{prefix}{name} "))
    return found


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_every_command_that_calls_a_server_takes_every_connection_option():
    every = commands(_parser())
    assert CLIENT_COMMANDS <= set(every)
    missing = {name: sorted(CONNECTION_OPTIONS - options(every[name])) for name in CLIENT_COMMANDS}
    assert missing == dict.fromkeys(CLIENT_COMMANDS, []), missing
    # A command added later with a --server gets the same set, or this fails naming it.
    served = {name for name, sub in every.items() if "--server" in options(sub)}
    assert all(CONNECTION_OPTIONS <= options(every[name]) for name in served), sorted(served)


@pytest.mark.parametrize("command", sorted(CLIENT_COMMANDS))
def test_the_options_read_back_the_same_on_every_command(command, tmp_path):
    words = WORDS[command]
    args = _parser().parse_args([*words, "--token", "t", "--tls-ca", "ca.crt", "--tls-server-name", "effcap.test"])
    assert connection_from_args(args) == ("t", ClientTls(ca=Path("ca.crt"), server_name="effcap.test"))
    plain = _parser().parse_args(words)
    assert connection_from_args(plain) == (None, None)  # no TLS option: plaintext
    only_tls = _parser().parse_args([*words, "--tls"])
    assert connection_from_args(only_tls) == (None, ClientTls())  # TLS with the system's roots


def test_an_unreadable_tls_file_names_its_option(tmp_path):
    with pytest.raises(EffcapError) as info:
        ClientTls(ca=tmp_path / "absent.crt").credentials()
    assert str(info.value).startswith("--tls-ca ") and info.value.field == "tls_ca"


@pytest.mark.parametrize("given", [["--token", "x"], ["--tls"], ["--tls-ca", "ca.crt", "--tls-server-name", "n"]])
@pytest.mark.parametrize("where", [["--data-dir", "d"], []])
def test_admin_log_refuses_connection_options_without_a_server(given, where, tmp_path, monkeypatch, capsys):
    """They would be ignored: the data directory (given or the default) is read, no server is called."""
    from effcap.clients.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["admin", "log", *where, *given]) == 2
    error = capsys.readouterr().err
    named = " and ".join(word for word in given if word.startswith("--"))
    assert f"{named} apply to --server HOST:PORT" in error, error


def test_every_server_option_says_what_it_is():
    """`watch --help` and `report --help` showed `--server SERVER` with no help text."""
    every = commands(_parser())
    silent = sorted(
        name
        for name, sub in every.items()
        for action in sub._actions
        if "--server" in action.option_strings and not action.help
    )
    assert silent == []
