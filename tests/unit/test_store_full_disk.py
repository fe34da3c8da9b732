"""The audit store on a full disk: a refused write is SQLITE_FULL, and the store works again once space returns."""

from __future__ import annotations

import sqlite3

import pytest

from effcap.protos.v1 import audit_pb2
from effcap.service.storage_health import StorageProbe, is_storage_full
from effcap.service.store import AuditStore

from ..full_disk import fill, small_tmpfs


def test_a_commit_refused_for_space_is_rolled_back_and_the_store_recovers(tmp_path):
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        store = AuditStore(disk / "effcap.sqlite3")
        record, _ = store.create_audit(audit_pb2.CreateAuditRequest(request_id="r"), "hash")
        probe = StorageProbe(disk, on_change=lambda writable: None)
        assert probe.check()
        filler = fill(disk)
        assert not probe.check()
        with pytest.raises(sqlite3.OperationalError) as info:
            for _ in range(5_000):  # the WAL reuses pages it holds: grow it until the disk refuses
                store.append_event(record.id, None, message="x" * 3_000)  # small: written at COMMIT, not spilled
        assert is_storage_full(info.value)
        filler.unlink()
        assert probe.check()
        store.append_event(record.id, None, message="after")  # a transaction left open would refuse this BEGIN
        assert store.events_after(record.id, 0)[-1].message == "after"
        store.close()
