"""What a worker needs to run one audit, as plain data: built by the server, which must not import torch.

Kept apart from runner.py (which imports the whole library) so that the server and its scheduler can
build jobs without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from effcap.capacity.graphs.onnx_wire import OnnxLimits
from effcap.protos.v1 import artifact_pb2, spec_pb2
from effcap.service.executors.config import ExecutorConfig


@dataclass(frozen=True)
class AuditJob:
    """Everything a worker needs, as plain data that crosses a process boundary."""

    audit: str
    model_path: Path
    model_digest: artifact_pb2.Digest | None
    dataset: spec_pb2.DatasetRef
    # Set when the dataset is an uploaded artifact.
    dataset_path: Path | None
    spec: spec_pb2.AuditSpec
    device: str = "auto"
    # The network's weights at initialisation, for distance-from-init measures.
    initial_model_path: Path | None = None
    # What an ONNX model may hold (the server's --max-graph-* flags).
    onnx_limits: OnnxLimits = OnnxLimits()
    # Where the trial batches run, and where finished ones are kept.
    executor: ExecutorConfig = ExecutorConfig()

    def to_wire(self) -> tuple:
        """Plain values for the spawn pickle (protos travel serialized: their classes are generated)."""
        digest = self.model_digest.SerializeToString() if self.model_digest is not None else None
        optional_path = lambda p: str(p) if p is not None else None  # noqa: E731
        return (
            self.audit, str(self.model_path), digest, self.dataset.SerializeToString(), optional_path(self.dataset_path),
            self.spec.SerializeToString(), self.device, optional_path(self.initial_model_path),
            self.onnx_limits.max_nodes, self.onnx_limits.max_weight_bytes, self.executor,
        )  # fmt: skip

    @classmethod
    def from_wire(cls, wire: tuple) -> AuditJob:
        audit, model_path, digest, dataset, dataset_path, spec, device, initial_model_path, *rest = wire
        nodes, weight_bytes, executor = rest
        return cls(
            audit=audit,
            model_path=Path(model_path),
            model_digest=artifact_pb2.Digest.FromString(digest) if digest is not None else None,
            dataset=spec_pb2.DatasetRef.FromString(dataset),
            dataset_path=Path(dataset_path) if dataset_path is not None else None,
            spec=spec_pb2.AuditSpec.FromString(spec),
            device=device,
            initial_model_path=Path(initial_model_path) if initial_model_path is not None else None,
            onnx_limits=OnnxLimits(nodes, weight_bytes),
            executor=executor,
        )
