"""EstimateAudit's answer: an audit's cost on this server's device, before anyone waits for it.

The calibration runs once per device in a spawned process configured like a worker (its thread
count and wait policy), since that is where audits train, and is cached in the data dir; later
estimates cost milliseconds. A lock keeps concurrent first requests from calibrating twice. The
calibration crosses back as plain values and the estimate itself is made in the input-validation
process (inflation.py), so the server never imports torch.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from effcap.service.executors.threads import ThreadPlan, apply_thread_plan


def _calibrate_in_worker(data_dir: str, device: str, plan: ThreadPlan) -> dict[str, object]:
    apply_thread_plan(plan)
    from effcap.capacity.calibration import cached_calibration
    from effcap.capacity.engine.device import pick_device

    return asdict(cached_calibration(Path(data_dir), pick_device(device)))


class AuditEstimator:
    def __init__(self, data_dir: Path, device: str, worker_threads: ThreadPlan) -> None:
        self._data_dir = data_dir
        self._device = device
        self._threads = worker_threads
        self._lock = threading.Lock()
        self._calibration: dict[str, object] | None = None

    def calibration(self) -> dict[str, object]:
        """The device's calibration as Calibration's fields (capacity/calibration.py)."""
        with self._lock:
            if self._calibration is None:
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    future = pool.submit(_calibrate_in_worker, str(self._data_dir), self._device, self._threads)
                    self._calibration = future.result()
            return self._calibration
