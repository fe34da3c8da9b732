"""The audit store on a real SQLite file: lifecycle, idempotency, events, restart recovery."""

from google.rpc import status_pb2

from effcap.protos.v1 import audit_pb2, report_pb2
from effcap.service.store import AuditStore, State


def request(request_id=""):
    return audit_pb2.CreateAuditRequest(request_id=request_id)


def test_lifecycle_survives_reopening_the_file(tmp_path):
    path = tmp_path / "s.sqlite3"
    store = AuditStore(path)
    record, created = store.create_audit(request("r1"), "h")
    assert created and record.state == State.AUDIT_STATE_QUEUED
    again, created = store.create_audit(request("r1"), "h")
    assert not created and again.id == record.id
    claimed = store.claim_next_queued()
    assert claimed.id == record.id and claimed.state == State.AUDIT_STATE_RUNNING and claimed.attempts == 1
    assert store.claim_next_queued() is None
    store.append_event(record.id, audit_pb2.AuditProgress(stage="training", trials_done=1, trials_total=2, fraction=0.5))
    assert store.finish(record.id, State.AUDIT_STATE_SUCCEEDED, report=report_pb2.AuditReport(audit=record.name))
    store.close()

    reopened = AuditStore(path)
    done = reopened.get(record.id)
    assert done.state == State.AUDIT_STATE_SUCCEEDED and done.report.audit == record.name
    events = reopened.events_after(record.id, 0)
    assert [e.sequence for e in events] == [1, 2]
    assert events[0].progress.stage == "training" and events[1].progress.fraction == 1.0


def test_an_ended_audit_is_never_overwritten(tmp_path):
    store = AuditStore(tmp_path / "s.sqlite3")
    record, _ = store.create_audit(request(), "h")
    assert store.finish(record.id, State.AUDIT_STATE_CANCELLED, error=status_pb2.Status(code=1, message="cancelled"))
    assert not store.finish(record.id, State.AUDIT_STATE_SUCCEEDED, report=report_pb2.AuditReport())
    assert store.append_event(record.id, audit_pb2.AuditProgress()) is None
    assert store.get(record.id).state == State.AUDIT_STATE_CANCELLED


def test_interrupted_audits_are_requeued_until_out_of_attempts(tmp_path):
    store = AuditStore(tmp_path / "s.sqlite3")
    record, _ = store.create_audit(request(), "h")
    for attempt in (1, 2):
        assert store.claim_next_queued().attempts == attempt
        requeued, failed = store.requeue_interrupted(max_attempts=2)
        if attempt == 1:
            assert requeued == [record.id] and not failed
            assert store.get(record.id).state == State.AUDIT_STATE_QUEUED
        else:
            assert failed == [record.id] and not requeued
    final = store.get(record.id)
    assert final.state == State.AUDIT_STATE_FAILED and "2 attempts" in final.error.message
    assert any("restarted" in e.message for e in store.events_after(record.id, 0))


def test_pages_cover_every_audit_once(tmp_path):
    store = AuditStore(tmp_path / "s.sqlite3")
    ids = [store.create_audit(request(), "h")[0].id for _ in range(7)]
    seen, after = [], None
    while True:
        page = store.list(3, after)
        seen += [r.id for r in page]
        if len(page) < 3:
            break
        after = (page[-1].create_time, page[-1].id)
    assert sorted(seen) == sorted(ids) and len(seen) == 7


def test_a_full_last_page_of_audits_carries_no_token(tmp_path):
    from effcap.service.auth.principal import ANONYMOUS
    from effcap.service.servicers import list_page

    store = AuditStore(tmp_path / "s.sqlite3")
    ids = [store.create_audit(request(), "h")[0].id for _ in range(6)]
    first, token = list_page(store, 3, "", ANONYMOUS)
    second, last_token = list_page(store, 3, token, ANONYMOUS)
    assert [r.id for r in first + second] == ids and token and last_token == ""


def test_operation_pages_stop_short_of_their_byte_budget_and_still_cover_every_audit(tmp_path):
    from effcap.service.auth.principal import ANONYMOUS
    from effcap.service.servicers import list_page, operations_within

    store = AuditStore(tmp_path / "s.sqlite3")
    ids = []
    for _ in range(6):
        record, _ = store.create_audit(request(), "h")
        store.claim_next_queued()
        store.finish(record.id, State.AUDIT_STATE_SUCCEEDED, report=report_pb2.AuditReport(audit=record.name, warnings=["x" * 100_000]))
        ids.append(record.id)
    seen, token, pages = [], "", 0
    while True:
        records, token = list_page(store, 100, token, ANONYMOUS)
        operations, token = operations_within(records, token, budget_bytes=250_000)
        assert 1 <= len(operations) <= 2 and sum(o.ByteSize() for o in operations) <= 250_000
        seen += [o.name.removeprefix("audits/") for o in operations]
        pages += 1
        if not token:
            break
    assert seen == ids and pages == 3
    # A single operation larger than the budget still comes back alone rather than never.
    records, _ = list_page(store, 100, "", ANONYMOUS)
    assert len(operations_within(records, "", budget_bytes=10)[0]) == 1
