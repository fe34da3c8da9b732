"""Every bad input gets a specific status, a reason and the field at fault; the server stays up."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from effcap.capacity.checkpoint import save_checkpoint
from effcap.capacity.models import MLPSpec, build_model, parse_architecture
from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import artifact_pb2, audit_pb2, spec_pb2

from .conftest import digits_spec


def create(client: EffcapClient, model, dataset: spec_pb2.DatasetRef, spec=None):
    return client.create_audit(model, dataset, spec or digits_spec("true", seeds=1, epochs=1))


def expect(call, code: str, reason: str, field: str) -> EffcapError:
    with pytest.raises(EffcapError) as info:
        call()
    error = info.value
    assert (error.code, error.reason, error.field) == (code, reason, field), str(error)
    return error


def npz(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_labels_out_of_range_are_refused_naming_the_array(client, demo_files, tmp_path):
    model = client.upload(demo_files[0])
    x = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    bad = npz(tmp_path, "bad.npz", x_train=x, y_train=np.arange(40) % 10, x_test=x[:5], y_test=np.array([0, 1, 2, 3, 12]))
    error = expect(lambda: create(client, model, spec_pb2.DatasetRef(artifact=client.upload(bad))), "INVALID_ARGUMENT", "DATASET_LABEL_OUT_OF_RANGE", "dataset.y_test")
    assert "label 12" in str(error)


def test_mismatched_lengths_are_refused(client, demo_files, tmp_path):
    model = client.upload(demo_files[0])
    x = np.zeros((40, 1, 8, 8), np.float32)
    bad = npz(tmp_path, "len.npz", x_train=x, y_train=np.arange(39) % 10)
    expect(lambda: create(client, model, spec_pb2.DatasetRef(artifact=client.upload(bad))), "INVALID_ARGUMENT", "DATASET_LENGTH_MISMATCH", "dataset.y_train")


def test_a_checkpoint_that_does_not_match_its_spec_is_refused(client, tmp_path):
    claimed = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(64,))
    actual = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(32,))
    save_checkpoint(tmp_path / "m.safetensors", claimed, build_model(actual).state_dict())
    model = client.upload(tmp_path / "m.safetensors")
    error = expect(lambda: create(client, model, spec_pb2.DatasetRef(builtin="digits")), "INVALID_ARGUMENT", "CHECKPOINT_SPEC_MISMATCH", "model.hidden.0.weight")
    assert "[32, 64]" in str(error)


def test_a_model_that_does_not_fit_the_data_is_refused(client, tmp_path):
    spec = MLPSpec(input_shape=(10,), num_classes=10, hidden_sizes=(8,))
    save_checkpoint(tmp_path / "m.safetensors", spec, build_model(spec).state_dict())
    model = client.upload(tmp_path / "m.safetensors")
    expect(lambda: create(client, model, spec_pb2.DatasetRef(builtin="digits")), "INVALID_ARGUMENT", "MODEL_DATA_MISMATCH", "spec.architecture.input_shape")


def test_an_invalid_spec_is_refused_naming_the_field(client, demo_files):
    model = client.upload(demo_files[0])
    spec = digits_spec("true", seeds=1, epochs=1)
    spec.randomization.training.learning_rate = -1
    expect(lambda: create(client, model, spec_pb2.DatasetRef(builtin="digits"), spec), "INVALID_ARGUMENT", "INVALID_SPEC", "spec.randomization.training.learning_rate")


def test_structured_pruning_of_a_vit_is_refused_up_front_naming_the_methods_entry(client, tmp_path):
    vit = {"family": "vit", "patch_size": 4, "dim": 8, "depth": 1, "heads": 2}
    spec = parse_architecture({**vit, "input_shape": [1, 8, 8], "num_classes": 10})
    save_checkpoint(tmp_path / "vit.safetensors", spec, build_model(spec, seed=0).state_dict())
    model = client.upload(tmp_path / "vit.safetensors")
    audit = spec_pb2.AuditSpec(compressibility=spec_pb2.CompressibilitySpec(methods=["magnitude_global", "structured"]))
    call = lambda: create(client, model, spec_pb2.DatasetRef(builtin="digits"), audit)  # noqa: E731
    error = expect(call, "INVALID_ARGUMENT", "STRUCTURED_PRUNING_UNSUPPORTED", "spec.compressibility.methods[1]")
    assert "LayerNorm" in str(error)


def test_unknown_digests_are_not_found(client, demo_files):
    unknown = artifact_pb2.Digest(sha256="ab" * 32, size_bytes=10)
    expect(lambda: create(client, unknown, spec_pb2.DatasetRef(builtin="digits")), "NOT_FOUND", "ARTIFACT_NOT_FOUND", "model")
    model = client.upload(demo_files[0])
    expect(lambda: create(client, model, spec_pb2.DatasetRef(artifact=unknown)), "NOT_FOUND", "ARTIFACT_NOT_FOUND", "dataset.artifact")
    expect(lambda: create(client, model, spec_pb2.DatasetRef(builtin="imagenet")), "INVALID_ARGUMENT", "UNKNOWN_DATASET", "dataset.builtin")
    expect(lambda: client.get_audit("audits/nope"), "NOT_FOUND", "AUDIT_NOT_FOUND", "name")
    expect(lambda: client.get_audit("nope"), "INVALID_ARGUMENT", "INVALID_NAME", "name")


def test_oversized_names_ids_timeouts_and_enums_get_field_errors_not_lost_statuses(client, demo_files):
    """Names and request ids are echoed in errors, which must fit gRPC's 16 KiB of status metadata."""
    from google.longrunning import operations_pb2
    from google.protobuf import duration_pb2

    model = client.upload(demo_files[0])
    expect(lambda: client.get_audit("audits/" + "x" * 20_000), "INVALID_ARGUMENT", "INVALID_NAME", "name")
    request = audit_pb2.CreateAuditRequest(model=model, dataset=spec_pb2.DatasetRef(builtin="digits"), spec=digits_spec("true", seeds=1, epochs=1), request_id="r" * 20_000)
    expect(lambda: client._call(client.audits.CreateAudit, request), "INVALID_ARGUMENT", "INVALID_REQUEST_ID", "request_id")
    wait = operations_pb2.WaitOperationRequest(name="audits/nope", timeout=duration_pb2.Duration(seconds=2**62))
    expect(lambda: client._call(client.operations.WaitOperation, wait), "INVALID_ARGUMENT", "INVALID_TIMEOUT", "timeout")
    spec = digits_spec("true", seeds=1, epochs=1)
    spec.randomization.init = 7
    expect(lambda: create(client, model, spec_pb2.DatasetRef(builtin="digits"), spec), "INVALID_ARGUMENT", "INVALID_SPEC", "spec.randomization.init")


def test_an_audit_beyond_the_servers_training_budget_is_refused_up_front(client, demo_files):
    model = client.upload(demo_files[0])
    huge = digits_spec("true,random,gaussian", seeds=64, epochs=100_000)  # 3 x 64 x 100k epochs of 1,297 examples
    error = expect(lambda: create(client, model, spec_pb2.DatasetRef(builtin="digits"), huge), "RESOURCE_EXHAUSTED", "AUDIT_TOO_LARGE", "spec.randomization")
    assert "24,902,400,000" in str(error)


def upload_raw(client: EffcapClient, declared: artifact_pb2.Digest, payload: bytes):
    def requests():
        yield artifact_pb2.UploadArtifactRequest(header=artifact_pb2.UploadHeader(digest=declared))
        for start in range(0, len(payload), 1 << 20):
            yield artifact_pb2.UploadArtifactRequest(chunk=payload[start : start + (1 << 20)])

    return client._call(client.artifacts.UploadArtifact, requests())


def test_bytes_that_do_not_match_the_declared_digest_are_refused_and_not_stored(client, demo_files):
    payload = demo_files[0].read_bytes()
    wrong_hash = artifact_pb2.Digest(sha256=hashlib.sha256(b"other").hexdigest(), size_bytes=len(payload))
    expect(lambda: upload_raw(client, wrong_hash, payload), "INVALID_ARGUMENT", "DIGEST_MISMATCH", "header.digest.sha256")
    missing = client.artifacts.FindMissingArtifacts(artifact_pb2.FindMissingArtifactsRequest(digests=[wrong_hash]))
    assert list(missing.missing) == [wrong_hash]
    short = artifact_pb2.Digest(sha256=hashlib.sha256(payload).hexdigest(), size_bytes=len(payload) - 1)
    expect(lambda: upload_raw(client, short, payload), "INVALID_ARGUMENT", "SIZE_MISMATCH", "chunk")
    long = artifact_pb2.Digest(sha256=hashlib.sha256(payload).hexdigest(), size_bytes=len(payload) + 1)
    expect(lambda: upload_raw(client, long, payload), "INVALID_ARGUMENT", "SIZE_MISMATCH", "header.digest.size_bytes")


def test_pickles_are_refused_and_never_loaded(client, tmp_path):
    sentinel = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Exploit()))
    expect(lambda: client.upload(evil), "INVALID_ARGUMENT", "PICKLE_REFUSED", "chunk")
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    expect(lambda: client.upload(tmp_path / "model.pt"), "INVALID_ARGUMENT", "PICKLE_REFUSED", "chunk")
    assert not sentinel.exists()


def test_uploads_over_the_size_limit_are_refused_before_any_byte_is_stored(client):
    huge = artifact_pb2.Digest(sha256="cd" * 32, size_bytes=(4 << 30) + 1)
    error = expect(lambda: upload_raw(client, huge, b""), "INVALID_ARGUMENT", "ARTIFACT_TOO_LARGE", "header.digest.size_bytes")
    assert str(4 << 30) in str(error)


def test_the_server_is_still_serving_after_all_of_that(server, client, demo_files):
    import grpc

    with grpc.insecure_channel(server.address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert server.process.poll() is None
    assert client.upload(demo_files[0]).size_bytes > 0


def test_error_texts_help_the_user_fix_the_input(client, demo_files, tmp_path):
    """No pydantic prefix; the arrays a dataset holds; the tensor names a checkpoint holds (issue 16, defect 12)."""
    model = client.upload(demo_files[0])
    spec = digits_spec("true,true", seeds=1, epochs=1)
    digits = spec_pb2.DatasetRef(builtin="digits")
    field = "spec.randomization.conditions"
    error = expect(lambda: create(client, model, digits, spec), "INVALID_ARGUMENT", "INVALID_SPEC", field)
    assert "conditions must be distinct" in str(error) and "Value error" not in str(error)
    x = np.zeros((40, 1, 8, 8), np.float32)
    renamed = npz(tmp_path, "renamed.npz", X=x, y=np.arange(40) % 10)
    data = spec_pb2.DatasetRef(artifact=client.upload(renamed))
    error = expect(lambda: create(client, model, data), "INVALID_ARGUMENT", "DATASET_ARRAY_MISSING", "dataset.x_train")
    assert "the file has 'X', 'y'" in str(error)
    spec = MLPSpec(input_shape=(1, 8, 8), num_classes=10, hidden_sizes=(16,))
    nn = torch.nn
    sequential = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    save_checkpoint(tmp_path / "seq.safetensors", spec, sequential.state_dict())
    bad = client.upload(tmp_path / "seq.safetensors")
    error = expect(lambda: create(client, bad, digits), "INVALID_ARGUMENT", "CHECKPOINT_SPEC_MISMATCH", "model")
    found = "the checkpoint has instead: 1.bias, 1.weight, 3.bias, 3.weight"
    assert "hidden.0.weight" in str(error) and found in str(error)
