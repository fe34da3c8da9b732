"""Per-principal quotas through the real server: RESOURCE_EXHAUSTED with QuotaFailure naming quota, use and limit."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from effcap.clients.sdk import EffcapClient, _upload_requests, file_digest
from effcap.protos.v1 import spec_pb2

from .conftest import ServerProcess, digits_spec
from .test_lifecycle import ENDLESS

STORED_BYTES = 2_000_000
DAILY_TRAINING = 100_000_000
DIGITS = spec_pb2.DatasetRef(builtin="digits")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("quotas"),
        "--quota-stored-bytes", str(STORED_BYTES),
        "--quota-open-audits", "1",
        "--quota-daily-training-examples", str(DAILY_TRAINING),
    )  # fmt: skip
    yield server.start()
    server.stop()


def quota_failure(call) -> tuple[error_details_pb2.QuotaFailure.Violation, dict[str, str]]:
    """The single violation and the ErrorInfo metadata of a call refused for a quota."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
    status = rpc_status.from_call(info.value)
    violations, metadata = [], {}
    for detail in status.details:
        if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            failure = error_details_pb2.QuotaFailure()
            detail.Unpack(failure)
            violations.extend(failure.violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            error_info = error_details_pb2.ErrorInfo()
            detail.Unpack(error_info)
            assert error_info.reason == "QUOTA_EXCEEDED"
            metadata = dict(error_info.metadata)
    assert len(violations) == 1, status
    return violations[0], metadata


def test_an_upload_beyond_the_stored_bytes_quota_is_refused_before_it_is_stored(limited, demo_files, tmp_path):
    big = tmp_path / "big.npz"
    np.savez(
        big, x_train=np.random.default_rng(0).random((1000, 256)).astype(np.float32), y_train=np.zeros(1000, np.int64)
    )
    with EffcapClient(limited.address) as client:
        client.upload(demo_files[0])
        held = demo_files[0].stat().st_size
        violation, metadata = quota_failure(
            lambda: client.artifacts.UploadArtifact(_upload_requests(big, file_digest(big)), timeout=60)
        )
        assert (violation.quota_id, violation.quota_value, violation.subject) == (
            "stored_bytes",
            STORED_BYTES,
            "principal:anonymous",
        )
        assert metadata == {
            "quota": "stored_bytes",
            "used": str(held),
            "requested": str(big.stat().st_size),
            "limit": str(STORED_BYTES),
        }
        assert f"{STORED_BYTES:,}" in violation.description
        missing = client._call(client.artifacts.FindMissingArtifacts, _find(big))
        assert len(missing.missing) == 1  # nothing was stored


def _find(path):
    from effcap.protos.v1 import artifact_pb2

    return artifact_pb2.FindMissingArtifactsRequest(digests=[file_digest(path)])


def test_open_audits_and_daily_training_quotas(limited, demo_files):
    with EffcapClient(limited.address) as client:
        model = client.upload(demo_files[0])
        first = client.create_audit(model, DIGITS, digits_spec("true", seeds=1, epochs=300, seed=11))
        violation, metadata = quota_failure(
            lambda: client.audits.CreateAudit(_request(model, digits_spec("true", 1, 300, seed=12)), timeout=60)
        )
        assert (violation.quota_id, metadata["used"], metadata["limit"]) == ("open_audits", "1", "1")
        client.cancel(first.name)
        violation, metadata = quota_failure(lambda: client.audits.CreateAudit(_request(model, ENDLESS), timeout=60))
        assert violation.quota_id == "daily_training_examples" and metadata["limit"] == str(DAILY_TRAINING)
        assert (
            int(metadata["requested"]) > DAILY_TRAINING and int(metadata["used"]) > 0
        )  # the cancelled audit still counts
        second = client.create_audit(model, DIGITS, digits_spec("true", seeds=1, epochs=1, seed=13))
        client.cancel(second.name)


def _request(model, spec):
    from effcap.protos.v1 import audit_pb2

    return audit_pb2.CreateAuditRequest(model=model, dataset=DIGITS, spec=spec)
