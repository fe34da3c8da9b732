"""Quota checks that cannot be raced, on a real SQLite store: an audit's check holds the insert's transaction,
an upload's reservation counts until its artifact is stored."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from effcap.protos.v1 import artifact_pb2, audit_pb2
from effcap.service.auth.principal import Principal
from effcap.service.errors import ApiError
from effcap.service.quotas import Quotas, UploadReservations
from effcap.service.store import AuditStore

ALICE = Principal("alice")


@pytest.fixture
def store(tmp_path):
    opened = AuditStore(tmp_path / "store.sqlite3")
    yield opened
    opened.close()


def create(store: AuditStore, quotas: Quotas, seed: int, training: int = 10) -> None:
    request = audit_pb2.CreateAuditRequest()
    request.spec.seed = seed
    admit = partial(quotas.check_audit, store, ALICE, training)
    store.create_audit(request, f"hash-{seed}", ALICE.name, training, admit)


@pytest.mark.parametrize(
    ("quotas", "quota_id"),
    [(Quotas(open_audits=1), "open_audits"), (Quotas(daily_training_examples=15), "daily_training_examples")],
)
def test_a_create_racing_one_in_its_quota_check_waits_for_its_insert_and_is_refused(store, quotas, quota_id):
    racer_error: list[ApiError] = []

    def racer() -> None:
        try:
            create(store, quotas, seed=2)
        except ApiError as error:
            racer_error.append(error)

    second = threading.Thread(target=racer)

    def first_admit() -> None:
        """The first create's check passes; a second create starts meanwhile and must wait for the insert."""
        quotas.check_audit(store, ALICE, 10)
        second.start()
        second.join(timeout=0.5)
        assert second.is_alive(), "the second create ran its check inside the first one's"

    request = audit_pb2.CreateAuditRequest()
    store.create_audit(request, "hash-1", ALICE.name, 10, first_admit)
    second.join(timeout=10)
    assert len(racer_error) == 1 and racer_error[0].metadata["quota"] == quota_id
    assert store.usage(ALICE.name, since=0.0) == (1, 10)  # one audit stored, the refused one not


def test_a_request_id_retried_at_the_quota_gets_its_audit_not_a_refusal(store):
    quotas = Quotas(open_audits=1)
    request = audit_pb2.CreateAuditRequest(request_id="retry-me")
    first, created = store.create_audit(request, "h", ALICE.name, 1, partial(quotas.check_audit, store, ALICE, 1))
    again, created_again = store.create_audit(request, "h", ALICE.name, 1, partial(quotas.check_audit, store, ALICE, 1))
    assert created and not created_again and again.id == first.id


def digest(character: str, size: int) -> artifact_pb2.Digest:
    return artifact_pb2.Digest(sha256=character * 64, size_bytes=size)


def test_uploads_under_way_count_against_the_stored_bytes_quota_until_stored(store):
    reservations = UploadReservations(store, Quotas(stored_bytes=100))
    with reservations.admitted(ALICE, digest("a", 60)):
        with pytest.raises(ApiError) as info:
            with reservations.admitted(ALICE, digest("b", 60)):
                pass
        assert info.value.metadata == {"quota": "stored_bytes", "used": "60", "requested": "60", "limit": "100"}
        with reservations.admitted(ALICE, digest("a", 60)):  # the same bytes at once: counted once
            pass
        with reservations.admitted(Principal("bob"), digest("b", 60)):  # another principal's quota
            pass
        store.put_artifact("a" * 64, 60, 1, ALICE.name)  # stored before its reservation ends: still counted once
        with pytest.raises(ApiError):
            with reservations.admitted(ALICE, digest("c", 41)):
                pass
    with reservations.admitted(ALICE, digest("c", 40)):  # 60 stored + 40
        pass
    with pytest.raises(ApiError):
        with reservations.admitted(ALICE, digest("d", 41)):
            pass


def test_a_failed_upload_gives_its_reservation_back(store):
    reservations = UploadReservations(store, Quotas(stored_bytes=100))
    with pytest.raises(ValueError):
        with reservations.admitted(ALICE, digest("a", 100)):
            raise ValueError("the bytes did not match the digest")
    with reservations.admitted(ALICE, digest("b", 100)):
        pass
