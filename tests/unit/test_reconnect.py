"""The client's backoff: UNAVAILABLE retried with doubling delays within a budget; anything else at once."""

from __future__ import annotations

import pytest

from effcap.clients.errors import EffcapError
from effcap.clients.reconnect import Backoff


def test_delays_double_up_to_five_seconds_and_a_success_starts_them_again():
    slept: list[float] = []
    backoff = Backoff(budget_s=1000, sleep=slept.append)
    unavailable = EffcapError("UNAVAILABLE: gone", "UNAVAILABLE")
    for _ in range(6):
        backoff.wait_or_raise(unavailable)
    assert slept == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.succeeded()
    backoff.wait_or_raise(unavailable)
    assert slept[-1] == 0.5


def test_other_errors_are_raised_at_once():
    backoff = Backoff(budget_s=1000, sleep=lambda s: pytest.fail("slept"))
    with pytest.raises(EffcapError, match="NOT_FOUND"):
        backoff.wait_or_raise(EffcapError("NOT_FOUND: audits/x", "NOT_FOUND"))


def test_the_error_is_raised_once_the_budget_is_spent():
    backoff = Backoff(budget_s=0.1, sleep=lambda s: None)
    with pytest.raises(EffcapError, match="UNAVAILABLE"):
        backoff.wait_or_raise(EffcapError("UNAVAILABLE: gone", "UNAVAILABLE"))
