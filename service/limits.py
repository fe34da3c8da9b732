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

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import grpc

from effcap.service.errors import ApiError

if TYPE_CHECKING:
    from effcap.capacity.specs import AuditSpec

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
    """The client's messages; once `idle_s` pass with none arriving, CANCELLED with reason UPLOAD_IDLE.

    A reader thread takes the messages from grpc and hands them over a small queue, so the handler's
    own thread can stop waiting after `idle_s` and end the call itself, with a status that tells the
    client why (cancelling the call from another thread reached the client as a bare CANCELLED).
    Once the call has ended, grpc's iterator stops and the reader with it. Close the generator
    when done with it: that releases the reader.
    """
    handed: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=2)  # the reader runs at most two messages ahead
    done = threading.Event()

    def hand(kind: str, value: object) -> None:
        while not done.is_set():
            try:
                handed.put((kind, value), timeout=0.5)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            for request in requests:
                hand("message", request)
            hand("end", None)
        except Exception as error:  # noqa: BLE001 - handed to the handler's thread, raised there
            hand("error", error)

    threading.Thread(target=read, name="effcap-upload-reader", daemon=True).start()
    try:
        while True:
            try:
                kind, value = handed.get(timeout=idle_s)
            except queue.Empty:
                message = f"no data for {idle_s:g} seconds; upload cancelled"
                idle = {"idle_seconds": f"{idle_s:g}"}
                raise ApiError(grpc.StatusCode.CANCELLED, "UPLOAD_IDLE", message, metadata=idle) from None
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        done.set()


@dataclass(frozen=True)
class AuditLimits:
    # Upper bound of training examples processed by one audit (cost.training_examples); 10^10 is
    # 30 times a paper-sized CIFAR randomization test (7 conditions x 5 seeds x 200 epochs x 50k).
    max_training_examples: int = 10**10
    max_parameters: int = 500_000_000
    # The NTK Gram's working memory (blocks of one tensor's Jacobian rows and the n x n Gram;
    # measures/ntk_memory.py), counted with the whole parameter count as the largest tensor.
    max_ntk_bytes: int = 4 << 30


def check_audit_size(spec: AuditSpec, train_examples: int, parameters: int, limits: AuditLimits) -> None:
    """RESOURCE_EXHAUSTED naming the field to shrink when an audit exceeds the server's limits.

    Runs in the input-validation process (inflation.py): the cost model imports torch, which the server does not.
    """
    from effcap.capacity.cost import training_examples
    from effcap.capacity.measures.ntk_memory import ntk_peak_bytes

    if parameters > limits.max_parameters:
        raise ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "MODEL_TOO_LARGE",
            f"model: {parameters:,} parameters; this server audits at most {limits.max_parameters:,}",
            field="model",
            metadata={"limit": str(limits.max_parameters)},
        )
    ntk_examples = spec.rademacher.ntk_examples if spec.rademacher is not None else 0
    if ntk_examples and ntk_peak_bytes(ntk_examples, parameters) > limits.max_ntk_bytes:
        most = max((m for m in range(ntk_examples) if ntk_peak_bytes(m, parameters) <= limits.max_ntk_bytes), default=0)
        raise ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "NTK_TOO_LARGE",
            f"spec.rademacher.ntk_examples: the NTK Gram of {ntk_examples} examples x {parameters:,} parameters would "
            f"hold up to {ntk_peak_bytes(ntk_examples, parameters) / 2**30:.2f} GiB; at most {most} examples fit this "
            "server's limit (0 skips the NTK)",
            field="spec.rademacher.ntk_examples",
            metadata={"limit_bytes": str(limits.max_ntk_bytes)},
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
