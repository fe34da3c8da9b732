"""`effcap serve`'s port options take 0 to 65535 and refuse anything else at parse time, naming the option:
gRPC wrapped --port 70000 to 4464 and listened there, and a socket raised a traceback for --metrics-port 70000."""

from __future__ import annotations

import pytest

from effcap.clients.cli import main


@pytest.mark.parametrize("option", ["--port", "--metrics-port"])
@pytest.mark.parametrize("value", ["70000", "65536", "-1", "http"])
def test_a_port_out_of_range_is_refused_by_the_parser(option, value, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--data-dir", str(tmp_path / "data"), option, value])
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}" in error, error
    out_of_range = f"a port is 0 to 65535 (0 picks a free one), got {value}"
    expected = "expected a port number" if value == "http" else out_of_range
    assert expected in error, error
    assert not (tmp_path / "data").exists()  # nothing started


@pytest.mark.parametrize("value", ["0", "65535"])
def test_the_range_ends_are_ports(value):
    from effcap.clients.cli import _parser

    args = _parser().parse_args(["serve", "--port", value, "--metrics-port", value])
    assert (args.port, args.metrics_port) == (int(value), int(value))
