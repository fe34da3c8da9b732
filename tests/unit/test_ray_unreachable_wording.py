"""Why the Ray cluster cannot be reached, worded by cause: a refusal is immediate (no timeout to blame), only
silence waits, and a port that accepts TCP but is no head is told the port a head uses by default."""

from __future__ import annotations

import errno
import socket

import pytest

from effcap.service.executors.ray_executor import _no_connection, _no_head


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "nothing listens at h:1 (connection refused)"),
        (TimeoutError("timed out"), "nothing answered at h:1 within 5 s"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "the host h cannot be resolved"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "h:1 cannot be reached (Network is unreachable)"),
    ],
)
def test_a_failed_tcp_probe_is_worded_by_its_cause(error, expected):
    assert _no_connection("h", "1", error).startswith(expected)


def test_a_port_that_is_no_head_is_told_the_usual_port():
    assert "6379" in _no_head("10.0.0.1:8265") and "10001" not in _no_head("10.0.0.1:8265")
    assert "10001" in _no_head("ray://10.0.0.1:8265")
