"""The AuditEstimate message of validated inputs: EstimateAudit's answer and `effcap audit --local --dry-run`'s.

It builds the model (on the meta device) and runs the cost model, so it imports torch: the server calls it
in its input-validation process (inflation.py), never in its own.
"""

from __future__ import annotations

from effcap.capacity.calibration import Calibration
from effcap.capacity.estimate import estimate_audit
from effcap.capacity.models import build_model
from effcap.capacity.models.flops import multiply_adds
from effcap.capacity.presets import apply_preset, needs_learning_rate_probe
from effcap.protos.v1 import audit_pb2
from effcap.service import codec
from effcap.service.runner import AuditInputs


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
