"""Cancel, a worker crash and a server restart: an audit always ends in a definite state, never lost."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal

import pytest

from effcap.clients.errors import EffcapError
from effcap.clients.sdk import EffcapClient
from effcap.clients.spec_args import randomization_spec
from effcap.protos.v1 import artifact_pb2, audit_pb2, spec_pb2
from effcap.service.artifacts import ArtifactStore
from effcap.service.auth.principal import ANONYMOUS
from effcap.service.executors.config import ExecutorConfig
from effcap.service.runner import AuditJob, run_audit
from effcap.service.scheduler import Scheduler
from effcap.service.store import AuditStore

from .conftest import ServerProcess, digits_spec, wait_for
from .test_full_audit import CollectingSink, without_timings

# Runs until stopped: random labels at a learning rate far too small to fit them, over a huge budget.
ENDLESS = spec_pb2.AuditSpec(seed=0, randomization=randomization_spec("random", 1, 1e-6, 1.0, 128, 100_000, 1.0))


def running(client: EffcapClient, name: str) -> bool:
    return client.get_audit(name).state == audit_pb2.AUDIT_STATE_RUNNING


def test_cancel_stops_the_worker_and_ends_the_audit(server: ServerProcess, client: EffcapClient, demo_files):
    model = client.upload(demo_files[0])
    operation = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), ENDLESS)
    wait_for(lambda: running(client, operation.name) and server.worker_pids())
    client.cancel(operation.name)
    done = client.get_operation(operation.name)
    assert done.done and done.error.code == 1  # google.rpc.Code.CANCELLED
    assert client.get_audit(operation.name).state == audit_pb2.AUDIT_STATE_CANCELLED
    wait_for(lambda: not server.worker_pids(), timeout=90)
    with pytest.raises(EffcapError) as info:
        client.cancel(operation.name)
    assert info.value.reason == "AUDIT_ALREADY_ENDED"


def test_a_crashed_worker_fails_its_audit_with_a_reason_and_the_server_lives_on(server: ServerProcess, client: EffcapClient, demo_files):
    model = client.upload(demo_files[0])
    operation = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), ENDLESS)
    pids = wait_for(lambda: running(client, operation.name) and server.worker_pids())
    os.kill(pids[0], signal.SIGKILL)
    done = client.wait(operation.name)
    assert done.done and "exited with code -9" in done.error.message
    error = EffcapError.from_status(done.error)
    assert (error.code, error.reason) == ("INTERNAL", "WORKER_EXITED")
    assert client.get_audit(operation.name).state == audit_pb2.AUDIT_STATE_FAILED
    # Next audit runs normally.
    quick = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), digits_spec("true", seeds=1, epochs=2))
    assert client.report_of(client.wait(quick.name)).randomization.conditions[0].trials[0].steps_run == 22


def test_an_audit_survives_a_server_restart_with_the_same_report(tmp_path, demo_files):
    model_path, _ = demo_files
    spec = digits_spec("true,random", seeds=1)
    # One trial per batch: trials are reported as their batch finishes, and the restart must fall between two.
    first = ServerProcess(tmp_path / "server", "--max-batch-trials", "1").start()
    try:
        with EffcapClient(first.address) as client:
            model = client.upload(model_path)
            operation = client.create_audit(model, spec_pb2.DatasetRef(builtin="digits"), spec)
            # Stop the server mid-audit: after the first trial finished, before the second did.
            wait_for(lambda: client.get_audit(operation.name).progress.trials_done >= 1, timeout=300)
    finally:
        first.stop(signal.SIGKILL)
    second = ServerProcess(tmp_path / "server", "--max-batch-trials", "1").start()
    try:
        with EffcapClient(second.address) as client:
            events = []
            done = client.wait(operation.name, on_event=events.append)
            report = client.report_of(done)
            stored_events = list(client.events(operation.name))
            messages = [e.message for e in stored_events]
    finally:
        second.stop()
    assert any("restarted" in m for m in messages)
    assert any("attempt 2 started" in m for m in messages)
    job = AuditJob(audit=operation.name, model_path=model_path, model_digest=model, dataset=spec_pb2.DatasetRef(builtin="digits"), dataset_path=None, spec=spec)
    job = dataclasses.replace(job, executor=ExecutorConfig(max_batch_trials=1))  # the server's cut into batches
    assert without_timings(report) == without_timings(run_audit(job, CollectingSink()))
    assert sum(e.HasField("trial_finished") for e in stored_events) == 2  # the first attempt's trial: not twice


def test_a_cancel_between_claim_and_worker_start_still_stops_the_worker(tmp_path, demo_files):
    """The scheduler claims an audit (RUNNING) before its worker exists; a cancel landing in that
    window finds no worker to stop, so the worker must notice the cancel when it registers."""
    store = AuditStore(tmp_path / "effcap.sqlite3")
    artifacts = ArtifactStore(tmp_path / "artifacts", store, 1 << 30)
    scheduler = Scheduler(store, artifacts)
    payload = demo_files[0].read_bytes()
    digest = artifact_pb2.Digest(sha256=hashlib.sha256(payload).hexdigest(), size_bytes=len(payload))
    artifacts.receive(iter([artifact_pb2.UploadArtifactRequest(header=artifact_pb2.UploadHeader(digest=digest)), artifact_pb2.UploadArtifactRequest(chunk=payload)]), ANONYMOUS)
    request = audit_pb2.CreateAuditRequest(model=digest, dataset=spec_pb2.DatasetRef(builtin="digits"), spec=ENDLESS)  # runs until stopped
    record, _ = store.create_audit(request, "hash")
    claimed = store.claim_next_queued()  # the scheduler's loop, stopped between its two steps
    assert claimed.id == record.id and scheduler.cancel(record.id)
    scheduler._launch(claimed)
    wait_for(lambda: not scheduler.running_pids(), timeout=60)
    assert store.get(record.id).state == audit_pb2.AUDIT_STATE_CANCELLED
    store.close()
