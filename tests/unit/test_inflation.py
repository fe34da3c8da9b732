"""The capped input-validation processes: an input that needs more memory than the cap is refused there, by name,
and the next request is served by a fresh process."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from effcap.protos.v1 import spec_pb2
from effcap.service.audit_job import AuditJob
from effcap.service.errors import ApiError
from effcap.service.inflation import InflationPool
from effcap.service.limits import AuditLimits

MIB = 1 << 20
# The server option that raises the cap, which every refusal for memory names.
CAP_OPTION = "effcap serve --max-inflated-bytes"


def job(model, data) -> AuditJob:
    spec = spec_pb2.AuditSpec(randomization=spec_pb2.RandomizationSpec(seeds_per_condition=1))
    spec.randomization.conditions.add(kind=spec_pb2.CONDITION_KIND_TRUE_LABELS)
    spec.randomization.training.max_epochs = 1
    ref = spec_pb2.DatasetRef(artifact={"sha256": "0" * 64, "size_bytes": data.stat().st_size})
    return AuditJob(audit="", model_path=model, model_digest=None, dataset=ref, dataset_path=data, spec=spec)


def test_an_input_past_the_memory_cap_is_refused_naming_it_and_the_pool_recovers(demo_files, tmp_path):
    model, digits = demo_files
    # 2^19 digits-shaped examples of uint8: 32 MiB as stored (32 KiB compressed), 128 MiB more as float32, past the
    # cap of 8 MiB and the process's 64 MiB of slack.
    large = tmp_path / "large.npz"
    x = np.zeros((1 << 19, 1, 8, 8), np.uint8)
    np.savez_compressed(large, x_train=x, y_train=np.arange(len(x)) % 10)
    pool = InflationPool(cap_bytes=8 * MIB, processes=1)
    try:
        with pytest.raises(ApiError) as info:
            pool.validate(job(model, large), AuditLimits())
        error = info.value
        assert (error.code, error.reason, error.field) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "INPUT_TOO_LARGE_IN_MEMORY",
            "dataset.artifact",
        )
        assert error.metadata == {"limit_bytes": str(8 * MIB)}
        assert CAP_OPTION in error.message, error.message  # what the operator changes to admit it
        pool.validate(job(model, digits), AuditLimits())  # a fresh process: the one that ran out has exited
        with pytest.raises(ApiError) as info:
            pool.validate(job(model, digits), AuditLimits(max_training_examples=10))  # the cost check runs there too
        assert (info.value.code, info.value.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "AUDIT_TOO_LARGE")
    finally:
        pool.close()


def test_a_validation_process_that_ends_without_answering_is_refused_naming_the_option_that_raises_the_cap(
    demo_files,
):
    # No answer within 1 ms: the pool kills the process as it would one that died or hung.
    pool = InflationPool(cap_bytes=8 * MIB, processes=1, timeout_s=0.001)
    try:
        with pytest.raises(ApiError) as info:
            pool.validate(job(*demo_files), AuditLimits())
    finally:
        pool.close()
    error = info.value
    assert (error.code, error.reason, error.field) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INPUT_VALIDATION_ENDED",
        "dataset.artifact",
    )
    assert "no answer within" in error.message and CAP_OPTION in error.message, error.message
