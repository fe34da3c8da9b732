"""`effcap serve --ready-file` holds an address a client on the same machine can dial, whatever --host says."""

from __future__ import annotations

import pytest

from effcap.service.ready_file import dialable_address, write_ready_file


@pytest.mark.parametrize(
    "host, written",
    [
        ("0.0.0.0", "127.0.0.1:50051"),  # every IPv4 interface: loopback is one of them
        ("[::]", "[::1]:50051"),  # every IPv6 interface
        ("::", "[::1]:50051"),
        ("", "127.0.0.1:50051"),
        ("127.0.0.1", "127.0.0.1:50051"),  # a host that is an address is written as given
        ("10.1.2.3", "10.1.2.3:50051"),
        ("effcap.internal", "effcap.internal:50051"),  # a name too: it is what a TLS certificate is issued for
        ("::1", "[::1]:50051"),  # IPv6 in brackets, as grpc and `--server` take it
        ("[fe80::1]", "[fe80::1]:50051"),
    ],
)
def test_the_ready_file_address_is_one_a_local_client_can_dial(host, written):
    assert dialable_address(host, 50051) == written


def test_the_ready_file_is_written_whole(tmp_path):
    ready = tmp_path / "ready"
    write_ready_file(ready, "0.0.0.0", 4242)
    assert ready.read_text() == "127.0.0.1:4242\n"
    assert not ready.with_suffix(".partial").exists()
