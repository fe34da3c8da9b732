"""The retention sweep on a real store and artifact directory, its clock moved forward through `sweep(now=...)`."""

from __future__ import annotations

import os
import time

from effcap.protos.v1 import artifact_pb2, audit_pb2, spec_pb2
from effcap.service.artifacts import ArtifactStore
from effcap.service.retention import ArtifactLeases, RetentionPolicy, RetentionSweeper
from effcap.service.store import AuditStore, State

HOUR = 3600.0


def put(store: AuditStore, artifacts: ArtifactStore, name: str) -> artifact_pb2.Digest:
    sha256 = name * 64
    path = artifacts.path(sha256)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"x")
    store.put_artifact(sha256, 1, artifact_pb2.ARTIFACT_FORMAT_SAFETENSORS)
    return artifact_pb2.Digest(sha256=sha256, size_bytes=1)


def request(model: artifact_pb2.Digest, data: artifact_pb2.Digest) -> audit_pb2.CreateAuditRequest:
    return audit_pb2.CreateAuditRequest(model=model, dataset=spec_pb2.DatasetRef(artifact=data))


def test_the_sweep_removes_by_age_and_never_what_a_pending_audit_or_a_lease_names(tmp_path):
    store = AuditStore(tmp_path / "store.sqlite3")
    artifacts = ArtifactStore(tmp_path / "artifacts", store, 1 << 20)
    leases = ArtifactLeases()
    sweeper = RetentionSweeper(store, artifacts, leases, RetentionPolicy(reports_s=2 * HOUR, artifacts_s=HOUR))
    unused, model, data, finished_model, leased = (put(store, artifacts, c) for c in "abcde")
    queued, _ = store.create_audit(request(model, data), "h1")
    done, _ = store.create_audit(request(finished_model, finished_model), "h2")
    store.finish(done.id, State.AUDIT_STATE_SUCCEEDED, report=None, message="succeeded")
    now = time.time()
    assert sweeper.sweep(now + HOUR / 2) == (0, 0)  # nothing is an hour old yet
    with leases.hold(request(leased, leased), "alice"):
        assert sweeper.sweep(now + HOUR + 60) == (0, 2)  # the unused upload and the finished audit's model
    remaining = set(store.artifact_times())
    assert remaining == {model.sha256, data.sha256, leased.sha256}
    assert not artifacts.path(unused.sha256).exists() and artifacts.path(model.sha256).exists()
    assert sweeper.sweep(now + 2 * HOUR + 60) == (1, 1)  # the finished audit's report; the lease is released
    assert store.get(done.id) is None and store.get(queued.id) is not None
    store.finish(queued.id, State.AUDIT_STATE_CANCELLED, message="cancelled")
    # Ended (just now, in real time) more than 2 hours before the sweep's clock, and no longer pending: all of it goes.
    assert sweeper.sweep(now + 2 * HOUR + 120) == (1, 2)
    assert store.get(queued.id) is None and store.artifact_times() == {}
    store.close()


def test_stored_trial_batches_expire_with_the_reports(tmp_path):
    store = AuditStore(tmp_path / "store.sqlite3")
    artifacts = ArtifactStore(tmp_path / "artifacts", store, 1 << 20)
    batches = tmp_path / "batches"
    old, new = batches / "a9" / "old.json", batches / "b2" / "new.json"
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    now = time.time()
    os.utime(old, (now - 3 * HOUR, now - 3 * HOUR))
    policy = RetentionPolicy(reports_s=2 * HOUR)
    RetentionSweeper(store, artifacts, ArtifactLeases(), policy, batches).sweep(now)
    assert not old.exists() and new.exists()
    RetentionSweeper(store, artifacts, ArtifactLeases(), RetentionPolicy(artifacts_s=HOUR), batches).sweep(now + 3 * HOUR)
    assert new.exists()  # batches follow the reports' retention only
    store.close()
