"""Keeping the server responsive: audits it can finish, a cap on calls that last, idle uploads cancelled.

The RPC thread pool is fixed, and an upload, an event stream or a WaitOperation holds one of its
threads for as long as the client keeps the call open. Left uncapped, enough stalled clients take
every thread and the server stops answering anything, health checks included. So these calls
share a number of slots below the pool size (the rest stay free for short calls), a call that
finds none free is refused with RESOURCE_EXHAUSTED and a RetryInfo, and an upload whose client
stops sending is cancelled. Audits are admitted only when their model and their training (counted
up front, capacity/cost.py) are within the server's limits, so one request cannot hold the worker
for years.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import grpc

from effcap.capacity.cost import training_examples
from effcap.capacity.specs import AuditSpec
from effcap.service.errors import ApiError

T = TypeVar("T")
# Seconds a refused long call is told to wait before retrying.
RETRY_AFTER_S = 5.0


class LongCallSlots:
    """At most `capacity` long calls at once; a call beyond that is refused at once, never queued."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = threading.BoundedSemaphore(capacity)

    @contextmanager
    def held(self, method: str) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "TOO_MANY_LONG_CALLS",
                f"{method}: all {self.capacity} slots for uploads, event streams and waits are in use; retry shortly",
                metadata={"limit": str(self.capacity)},
                retry_after_s=RETRY_AFTER_S,
            )
        try:
            yield
        finally:
            self._free.release()


def cancel_when_idle(requests: Iterator[T], context: grpc.ServicerContext, idle_s: float) -> Iterator[T]:
    """The client's messages; the call is cancelled once `idle_s` pass with none arriving.

    A watchdog thread does the cancelling (the handler's thread is blocked waiting for the next
    message); the blocked read then fails, the handler ends with an UPLOAD_IDLE error that no one
    receives, and the client sees CANCELLED. Close the generator when done with it: that stops
    the watchdog.
    """
    last = time.monotonic()
    done, fired = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(min(1.0, idle_s)):
            if time.monotonic() - last > idle_s:
                fired.set()
                context.cancel()
                return

    threading.Thread(target=watch, name="effcap-upload-idle", daemon=True).start()
    try:
        for request in requests:
            last = time.monotonic()
            yield request
    except grpc.RpcError:
        if fired.is_set():
            raise ApiError(grpc.StatusCode.DEADLINE_EXCEEDED, "UPLOAD_IDLE", f"no data for {idle_s:g} seconds; upload cancelled") from None
        raise
    finally:
        done.set()


@dataclass(frozen=True)
class AuditLimits:
    # Upper bound of training examples processed by one audit (cost.training_examples); 10^10 is
    # 30 times a paper-sized CIFAR randomization test (7 conditions x 5 seeds x 200 epochs x 50k).
    max_training_examples: int = 10**10
    max_parameters: int = 500_000_000
    # The NTK complexity holds its Jacobian whole (ntk_examples x parameters, float64; measures/ntk.py).
    max_ntk_jacobian_bytes: int = 4 << 30


def check_audit_size(spec: AuditSpec, train_examples: int, parameters: int, limits: AuditLimits) -> None:
    """RESOURCE_EXHAUSTED naming the field to shrink when an audit exceeds the server's limits."""
    if parameters > limits.max_parameters:
        raise ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "MODEL_TOO_LARGE",
            f"model: {parameters:,} parameters; this server audits at most {limits.max_parameters:,}",
            field="model",
            metadata={"limit": str(limits.max_parameters)},
        )
    if spec.rademacher is not None and spec.rademacher.ntk_examples * parameters * 8 > limits.max_ntk_jacobian_bytes:
        most = limits.max_ntk_jacobian_bytes // (8 * parameters)
        raise ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "NTK_TOO_LARGE",
            f"spec.rademacher.ntk_examples: the NTK Jacobian of {spec.rademacher.ntk_examples} examples x {parameters:,} parameters "
            f"would take {spec.rademacher.ntk_examples * parameters * 8 / 2**30:.1f} GiB; at most {most} examples fit this server's limit (0 skips the NTK)",
            field="spec.rademacher.ntk_examples",
            metadata={"limit_bytes": str(limits.max_ntk_jacobian_bytes)},
        )
    cost = training_examples(spec, train_examples)
    total = sum(cost.values())
    if total > limits.max_training_examples:
        largest = max(cost, key=cost.__getitem__)
        raise ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "AUDIT_TOO_LARGE",
            f"spec.{largest}: the audit would train on up to {total:,} examples ({largest}: {cost[largest]:,}); this server's "
            f"limit is {limits.max_training_examples:,}. Fewer conditions, seeds or epochs bring it down",
            field=f"spec.{largest}",
            metadata={"limit": str(limits.max_training_examples), "requested": str(total)},
        )
