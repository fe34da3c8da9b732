"""Deleting an artifact on a real store and artifact directory: one owner's record at a time, the file with the last
one, never under an unfinished audit or a CreateAudit's lease, and nothing left behind by a crash in between."""

from __future__ import annotations

import threading

import grpc
import pytest

from effcap.protos.v1 import artifact_pb2, audit_pb2, report_pb2, spec_pb2
from effcap.service.artifacts import ArtifactStore, request_inputs
from effcap.service.auth.activity import ActivityLog, ActivityQuery
from effcap.service.auth.principal import Principal
from effcap.service.errors import ApiError
from effcap.service.limits import LongCallSlots
from effcap.service.quotas import Quotas
from effcap.service.retention import ArtifactLeases, remove_orphaned_artifacts
from effcap.service.servicers import ArtifactServicer
from effcap.service.store import AuditStore, State

ALICE, BOB, ROOT = Principal("alice"), Principal("bob"), Principal("root", admin=True)


def stores(tmp_path) -> tuple[AuditStore, ArtifactStore]:
    store = AuditStore(tmp_path / "store.sqlite3")
    return store, ArtifactStore(tmp_path / "artifacts", store, 1 << 20)


def put(store: AuditStore, artifacts: ArtifactStore, name: str, *owners: Principal) -> artifact_pb2.Digest:
    sha256 = name * 64
    path = artifacts.path(sha256)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"xyz")
    for owner in owners:
        store.put_artifact(sha256, 3, artifact_pb2.ARTIFACT_FORMAT_SAFETENSORS, owner.name)
    return artifact_pb2.Digest(sha256=sha256, size_bytes=3)


def audit_of(store: AuditStore, model: artifact_pb2.Digest, owner: Principal) -> str:
    request = audit_pb2.CreateAuditRequest(model=model, dataset=spec_pb2.DatasetRef(builtin="digits"))
    record, _ = store.create_audit(request, f"h-{owner.name}", owner.name)
    return record.id


def test_shared_bytes_stay_until_the_last_owner_deletes_and_each_owners_use_goes_down(tmp_path):
    store, artifacts = stores(tmp_path)
    shared = put(store, artifacts, "a", ALICE, BOB)
    leases = ArtifactLeases()
    assert store.stored_bytes("alice", {}) == 3 and store.stored_bytes("bob", {}) == 3
    gone = artifacts.forget(shared.sha256, ALICE, leases.holders)
    assert gone.held and gone.in_use_by is None and not gone.bytes_unreferenced
    assert artifacts.get(shared, ALICE) is None and artifacts.get(shared, BOB) is not None
    assert artifacts.path(shared.sha256).is_file() and store.stored_bytes("alice", {}) == 0
    assert not artifacts.forget(shared.sha256, ALICE, leases.holders).held  # alice holds it no more
    assert artifacts.forget(shared.sha256, BOB, leases.holders).bytes_unreferenced
    assert not artifacts.path(shared.sha256).exists() and store.artifact_shas() == set()
    assert store.stored_bytes("bob", {}) == 0
    store.close()


def test_an_unfinished_audit_of_the_owner_keeps_the_record_and_a_finished_one_keeps_its_report(tmp_path):
    store, artifacts = stores(tmp_path)
    model = put(store, artifacts, "b", ALICE)
    leases = ArtifactLeases()
    audit_id = audit_of(store, model, ALICE)
    refused = artifacts.forget(model.sha256, ALICE, leases.holders)
    assert refused.in_use_by == f"audits/{audit_id}" and artifacts.get(model, ALICE) is not None
    report = report_pb2.AuditReport(warnings=["the report outlives its inputs"])
    store.finish(audit_id, State.AUDIT_STATE_SUCCEEDED, report=report, message="succeeded")
    assert artifacts.forget(model.sha256, ALICE, leases.holders).bytes_unreferenced
    assert store.get(audit_id).report == report and store.get(audit_id).state == State.AUDIT_STATE_SUCCEEDED
    store.close()


def test_bytes_another_principals_audit_reads_or_a_create_holds_stay_until_the_start_up_sweep(tmp_path):
    store, artifacts = stores(tmp_path)
    model, leased = put(store, artifacts, "c", ALICE), put(store, artifacts, "d", ALICE)
    leases = ArtifactLeases()
    admins = audit_of(store, model, ROOT)  # an admin may audit what it did not upload
    deletion = artifacts.forget(model.sha256, ALICE, leases.holders)
    assert deletion.held and not deletion.bytes_unreferenced  # alice's record goes, no hint of root's audit
    assert artifacts.get(model, ALICE) is None and artifacts.path(model.sha256).is_file()
    request = audit_pb2.CreateAuditRequest(model=leased, dataset=spec_pb2.DatasetRef(builtin="digits"))
    with leases.hold(request, ROOT.name):  # an admin's CreateAudit validating alice's upload
        assert not artifacts.forget(leased.sha256, ALICE, leases.holders).bytes_unreferenced
    assert set(store.ownerless_artifacts()) == {model.sha256, leased.sha256}
    remove_orphaned_artifacts(store, artifacts)  # a restart: the admin's audit still reads `model`
    assert store.artifact_shas() == {model.sha256} and not artifacts.path(leased.sha256).exists()
    store.finish(admins, State.AUDIT_STATE_CANCELLED, message="cancelled")
    remove_orphaned_artifacts(store, artifacts)
    assert store.artifact_shas() == set() and not artifacts.path(model.sha256).exists()
    store.close()


def test_an_owners_deletion_while_its_own_create_audit_validates_is_refused_and_the_audit_is_stored(tmp_path):
    """CreateAudit's steps in their order (lease, look-up, validation, insert) on one thread, a deletion on another
    landing in the middle: it must not leave an audit queued on an upload its owner no longer holds."""
    store, artifacts = stores(tmp_path)
    model = put(store, artifacts, "7", ALICE)
    leases = ArtifactLeases()
    request = audit_pb2.CreateAuditRequest(model=model, dataset=spec_pb2.DatasetRef(builtin="digits"))
    validating, deletion_done = threading.Event(), threading.Event()
    created: list[str] = []

    def create_audit() -> None:
        with leases.hold(request, ALICE.name):
            artifacts.require(model, "model", ALICE)
            validating.set()  # the inputs are being loaded in a capped process: seconds
            assert deletion_done.wait(10)
            record, _ = store.create_audit(request, "h", ALICE.name, inputs=request_inputs(request))
            created.append(record.id)

    creator = threading.Thread(target=create_audit)
    creator.start()
    assert validating.wait(10)
    refused = artifacts.forget(model.sha256, ALICE, leases.holders)
    deletion_done.set()
    creator.join(10)
    assert refused.held and refused.in_create and not refused.bytes_unreferenced
    assert len(created) == 1 and store.get(created[0]).state == State.AUDIT_STATE_QUEUED
    assert artifacts.get(model, ALICE) is not None and store.stored_bytes("alice", {}) == 3
    assert artifacts.forget(model.sha256, ALICE, leases.holders).in_use_by == f"audits/{created[0]}"
    store.close()


class CallOf:
    """The servicer context of one caller's call: call_guard's principal, and the status handle_errors aborts with."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def abort_with_status(self, status: grpc.Status) -> None:
        raise Aborted(status)


class Aborted(Exception):
    pass


def test_delete_artifact_answers_failed_precondition_while_the_callers_create_audit_holds_it(tmp_path):
    store, artifacts = stores(tmp_path)
    model = put(store, artifacts, "6", ALICE)
    leases, activity = ArtifactLeases(), ActivityLog(tmp_path / "store.sqlite3")
    servicer = ArtifactServicer(artifacts, LongCallSlots(1), 60.0, activity, store, Quotas(), leases)
    request = audit_pb2.CreateAuditRequest(model=model, dataset=spec_pb2.DatasetRef(builtin="digits"))
    delete = artifact_pb2.DeleteArtifactRequest(digest=model)
    with leases.hold(request, ALICE.name), pytest.raises(Aborted) as refused:
        servicer.DeleteArtifact(delete, CallOf(ALICE))
    status = refused.value.args[0]
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION and "an audit of yours being created" in status.details
    assert artifacts.get(model, ALICE) is not None and activity.page(10) == []  # nothing deleted, nothing logged
    servicer.DeleteArtifact(delete, CallOf(ALICE))  # the create answered: the owner may delete
    assert artifacts.get(model, ALICE) is None and not artifacts.path(model.sha256).exists()
    activity.close()
    store.close()


def test_an_audit_is_not_stored_on_an_upload_deleted_after_it_was_looked_up(tmp_path):
    """The insert checks its inputs again in its own transaction, whatever let a deletion past the lease."""
    store, artifacts = stores(tmp_path)
    model, data = put(store, artifacts, "8", ALICE), put(store, artifacts, "9", ALICE, BOB)
    dataset = spec_pb2.DatasetRef(artifact=data)
    request = audit_pb2.CreateAuditRequest(model=model, dataset=dataset)
    artifacts.require(data, "dataset.artifact", ALICE)
    assert store.delete_artifact_owner(data.sha256, "alice", lambda r: False, drop_unheld=True).held
    with pytest.raises(ApiError) as refused:
        store.create_audit(request, "h", ALICE.name, inputs=request_inputs(request))
    assert refused.value.code == grpc.StatusCode.NOT_FOUND and refused.value.field == "dataset.artifact"
    assert store.count_by_state() == {}  # nothing stored
    record, _ = store.create_audit(request, "h", ROOT.name, inputs=request_inputs(request), admin=True)
    assert store.get(record.id).owner == "root"  # an admin audits bob's copy of the same bytes
    store.close()


def test_a_crash_between_the_record_and_the_file_leaves_a_file_the_next_start_removes(tmp_path):
    store, artifacts = stores(tmp_path)
    kept, deleted = put(store, artifacts, "e", ALICE), put(store, artifacts, "f", ALICE)
    # The record half of forget(), as a server killed before it unlinked the file would have left it.
    assert store.delete_artifact_owner(
        deleted.sha256, "alice", lambda request: False, drop_unheld=True
    ).bytes_unreferenced
    partial = tmp_path / "artifacts" / "incoming" / "upload-in-progress"
    partial.write_bytes(b"partial")
    assert remove_orphaned_artifacts(store, artifacts) == 1
    assert not artifacts.path(deleted.sha256).exists() and artifacts.path(kept.sha256).is_file()
    assert partial.exists()  # incoming/ is remove_partial_uploads' (and holds no committed file)
    assert artifacts.get(kept, ALICE) is not None
    store.close()


def test_activity_pages_run_newest_first_through_entries_of_the_same_instant(tmp_path, monkeypatch):
    activity = ActivityLog(tmp_path / "store.sqlite3")
    monkeypatch.setattr("effcap.service.auth.activity.time.time", lambda: 1000.0)
    for n in range(5):
        activity.record("alice" if n % 2 else "bob", "create", f"audits/{n}")
    first = activity.page(2)
    assert [e.target for e in first] == ["audits/4", "audits/3"]
    rest = activity.page(10, before=(first[-1].time, first[-1].id))
    assert [e.target for e in rest] == ["audits/2", "audits/1", "audits/0"]
    assert [e.target for e in activity.page(10, ActivityQuery(principal="alice"))] == ["audits/3", "audits/1"]
    assert (
        activity.page(10, ActivityQuery(start=1000.5)) == [] and len(activity.page(10, ActivityQuery(end=1000.5))) == 5
    )
    activity.close()
