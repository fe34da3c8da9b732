"""EstimateAudit's answer: an audit's cost on this server's device, before anyone waits for it.

The calibration runs once per device in a spawned process configured like a worker (its thread
count and wait policy), since that is where audits train, and is cached in the data dir; later
estimates cost milliseconds. A lock keeps concurrent first requests from calibrating twice.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from effcap.capacity.calibration import Calibration, cached_calibration
from effcap.capacity.engine.device import pick_device
from effcap.capacity.estimate import estimate_audit
from effcap.capacity.models import build_model
from effcap.capacity.models.flops import multiply_adds
from effcap.capacity.presets import apply_preset, needs_learning_rate_probe
from effcap.protos.v1 import audit_pb2
from effcap.service import codec
from effcap.service.executors.threads import ThreadPlan, apply_thread_plan
from effcap.service.runner import AuditInputs


def _calibrate_in_worker(data_dir: str, device: str, plan: ThreadPlan) -> Calibration:
    apply_thread_plan(plan)
    return cached_calibration(Path(data_dir), pick_device(device))


class AuditEstimator:
    def __init__(self, data_dir: Path, device: str, worker_threads: ThreadPlan) -> None:
        self._data_dir = data_dir
        self._device = device
        self._threads = worker_threads
        self._lock = threading.Lock()
        self._calibration: Calibration | None = None

    def calibration(self) -> Calibration:
        with self._lock:
            if self._calibration is None:
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    future = pool.submit(_calibrate_in_worker, str(self._data_dir), self._device, self._threads)
                    self._calibration = future.result()
            return self._calibration

    def estimate(self, inputs: AuditInputs, max_training_examples: int, audits_ahead: int) -> audit_pb2.AuditEstimate:
        return audit_estimate(inputs, self.calibration(), max_training_examples, audits_ahead)


def audit_estimate(
    inputs: AuditInputs, calibration: Calibration, max_training_examples: int, audits_ahead: int
) -> audit_pb2.AuditEstimate:
    """The AuditEstimate message of validated inputs (also what `effcap audit --local --dry-run` prints)."""
    architecture, dataset = inputs.checkpoint.architecture, inputs.dataset
    n, n_test = (len(dataset.x_train), len(dataset.x_test)) if dataset is not None else (0, 0)  # None: weights only
    madds = multiply_adds(build_model(architecture, device="meta"), tuple(architecture.input_shape))
    resolved, chosen = apply_preset(inputs.spec, n)
    analyses = [
        audit_pb2.AnalysisEstimate(
            analysis=e.analysis,
            trials=e.trials,
            sgd_steps=e.sgd_steps,
            training_examples=e.training_examples,
            estimated_seconds=e.seconds,
            expected_seconds=e.expected_seconds,
        )
        for e in estimate_audit(inputs.spec, n, n_test, madds, calibration)
    ]
    spec = codec.audit_spec_to_proto(resolved)
    if needs_learning_rate_probe(resolved):
        chosen.append("randomization: learning rate to be chosen by a short probe on true labels")
        spec.randomization.training.ClearField("learning_rate")  # not the 0.01 a spec without a preset would get
    return audit_pb2.AuditEstimate(
        analyses=analyses,
        training_examples=sum(a.training_examples for a in analyses),
        max_training_examples=max_training_examples,
        estimated_seconds=sum(a.estimated_seconds for a in analyses),
        expected_seconds=sum(a.expected_seconds for a in analyses),
        calibration=calibration.describe(),
        spec=spec,
        audits_ahead=audits_ahead,
        defaults_chosen=chosen,
    )
