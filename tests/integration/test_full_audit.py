"""The whole path through a real server: upload, create, stream progress, report; and --local parity."""

from __future__ import annotations

from google.longrunning import operations_proto_pb2 as operations_pb2
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from effcap.clients.sdk import EffcapClient
from effcap.protos.v1 import audit_pb2, report_pb2, spec_pb2
from effcap.service.runner import AuditJob, run_audit

from .conftest import digits_spec


class CollectingSink:
    def __init__(self):
        self.trials = []

    def progress(self, *args):
        pass

    def trial_finished(self, trial, *args):
        self.trials.append(trial)


def without_timings(report: report_pb2.AuditReport) -> dict:
    """The report minus wall-clock fields and the audit name, which legitimately differ between runs."""
    data = json_format.MessageToDict(report, preserving_proto_field_name=True)
    data.pop("audit", None)
    data.pop("environment", None)
    for condition in data.get("randomization", {}).get("conditions", []):
        condition.pop("seconds_to_fit", None)
        for trial in condition.get("trials", []):
            trial.pop("seconds_to_fit", None)
            trial.pop("seconds_run", None)
    return data


def test_audit_end_to_end_memorises_random_labels(client: EffcapClient, demo_files):
    model_path, data_path = demo_files
    model, data = client.upload(model_path), client.upload(data_path)
    operation = client.create_audit(model, spec_pb2.DatasetRef(artifact=data), digits_spec())
    assert operation.name.startswith("audits/") and not operation.done

    events = []
    operation = client.wait(operation.name, on_event=events.append)
    report = client.report_of(operation)

    # Progress streamed in order, one event per finished trial, ending in success.
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert sum(e.HasField("trial_finished") for e in events) == 6
    assert events[-1].progress.state == audit_pb2.AUDIT_STATE_SUCCEEDED

    conditions = {c.label: c for c in report.randomization.conditions}
    assert list(conditions) == ["true", "corrupt(0.5)", "random"]
    random_labels = conditions["random"]
    assert random_labels.fitted_fraction == 1.0 and random_labels.train_accuracy.mean == 1.0
    assert abs(random_labels.test_accuracy.mean - 0.1) < 0.05  # chance on 10 classes
    assert conditions["true"].test_accuracy.mean > 0.9
    assert conditions["true"].test_accuracy.mean > conditions["corrupt(0.5)"].test_accuracy.mean > random_labels.test_accuracy.mean
    assert random_labels.slowdown_vs_true > 1.0
    assert report.card.random_labels_train_accuracy == 1.0 and report.card.chance_accuracy == 0.1
    assert report.model.parameter_count == 301_066 and report.model.digest == model
    assert report.dataset.train_examples == 1297 and report.randomization.test_labels_clean

    # The Operation, the Audit resource and the listing agree.
    audit = client.get_audit(operation.name)
    assert audit.state == audit_pb2.AUDIT_STATE_SUCCEEDED and audit.report == report
    listed = client.operations.ListOperations(operations_pb2.ListOperationsRequest())
    assert operation.name in [op.name for op in listed.operations]

    # The same inputs and seed in-process (effcap audit --local) give the same numbers.
    job = AuditJob(audit=operation.name, model_path=model_path, model_digest=model, dataset=spec_pb2.DatasetRef(artifact=data), dataset_path=data_path, spec=digits_spec())
    local = run_audit(job, CollectingSink())
    assert without_timings(local) == without_timings(report)


def test_uploads_are_deduplicated_by_digest(client: EffcapClient, demo_files):
    model_path, _ = demo_files
    digest = client.upload(model_path)
    from effcap.protos.v1 import artifact_pb2

    missing = client.artifacts.FindMissingArtifacts(artifact_pb2.FindMissingArtifactsRequest(digests=[digest]))
    assert list(missing.missing) == []
    stored = client.artifacts.GetArtifact(artifact_pb2.GetArtifactRequest(digest=digest))
    assert stored.format == artifact_pb2.ARTIFACT_FORMAT_SAFETENSORS


def test_request_id_makes_creation_idempotent(client: EffcapClient, demo_files):
    model_path, _ = demo_files
    model = client.upload(model_path)
    spec = digits_spec("true", seeds=1, epochs=1)
    first = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), spec, request_id="same-key")
    second = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), spec, request_id="same-key")
    assert first.name == second.name
    client.wait(first.name)


def test_health_and_reflection_list_the_services(server):
    import grpc

    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        services = (
            "effcap.v1.AuditService",
            "effcap.v1.ArtifactService",
            "effcap.v1.AdminService",
            "google.longrunning.Operations",
        )
        for service in ("", *services):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in responses[0].list_services_response.service}
        assert {*services, "grpc.health.v1.Health"} <= names
