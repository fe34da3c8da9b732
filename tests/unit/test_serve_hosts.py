"""`effcap serve --host/--metrics-host` take an IPv6 host with or without brackets (gRPC needs them, a socket
does not), and refuse a malformed host naming the option instead of letting gRPC blame the port."""

from __future__ import annotations

import pytest

from effcap.clients.cli import main
from effcap.clients.errors import EffcapError
from effcap.clients.serve_hosts import bare_host, grpc_host
from effcap.service.ready_file import dialable_address


@pytest.mark.parametrize(
    ("given", "grpc", "bare"),
    [
        ("::1", "[::1]", "::1"),
        ("[::1]", "[::1]", "::1"),
        ("::", "[::]", "::"),
        ("[::]", "[::]", "::"),
        ("fe80::1%eth0", "[fe80::1%eth0]", "fe80::1%eth0"),
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0", "0.0.0.0"),
        ("localhost", "localhost", "localhost"),
    ],
)
def test_both_forms_give_each_listener_its_form(given, grpc, bare):
    assert grpc_host(given) == grpc
    assert bare_host(given, "--metrics-host") == bare


@pytest.mark.parametrize("given", ["::1:50051", "[127.0.0.1]", "[::1", "::1]", "[]", "host name", "::g"])
def test_a_malformed_host_is_refused_naming_the_option_not_the_port(given):
    with pytest.raises(EffcapError) as info:
        grpc_host(given, "--metrics-host")
    assert (info.value.code, info.value.field) == ("INVALID_ARGUMENT", "metrics_host")
    assert f"--metrics-host {given!r} is not a host" in str(info.value)


@pytest.mark.parametrize("given", ["::1", "[::1]"])
def test_the_ready_file_of_a_normalised_ipv6_host_is_dialable(given):
    assert dialable_address(grpc_host(given), 50051) == "[::1]:50051"
    assert dialable_address(grpc_host("::" if given == "::1" else "[::]"), 7) == "[::1]:7"


def test_serve_refuses_a_malformed_host_before_starting(capsys, tmp_path):
    code = main(["serve", "--data-dir", str(tmp_path), "--host", "::1:50051", "--port", "0"])
    assert code == 2
    error = capsys.readouterr().err
    assert "--host '::1:50051' is not a host" in error and "taken" not in error
    assert not any(tmp_path.iterdir())  # refused before the server made its store


def test_a_host_not_on_this_machine_is_named_beside_the_port(tmp_path):
    from effcap.service.server import EffcapServer, ServerConfig

    # 192.0.2.1 (TEST-NET-1) is well formed but no interface's address: gRPC cannot bind it.
    with pytest.raises(SystemExit) as info:
        EffcapServer(ServerConfig(data_dir=tmp_path, host="192.0.2.1", port=0, insecure=True))
    assert "192.0.2.1 is no address of this machine" in str(info.value)
