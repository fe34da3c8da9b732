"""Keys, owners and exposure rules on real SQLite files: what the interceptor and servicers rely on."""

from __future__ import annotations

import sqlite3

import pytest

from effcap.protos.v1 import audit_pb2
from effcap.service.auth.authenticator import _is_loopback
from effcap.service.auth.exposure import check_exposure, is_loopback_host
from effcap.service.auth.keys import InvalidKeyName, KeyRing, token_hash
from effcap.service.auth.principal import ANONYMOUS, Principal
from effcap.service.auth.tls import ServerTls
from effcap.service.store import AuditStore, State

# The store's schema before owners existed (as in effcap 0.2.0's data dirs).
OLD_SCHEMA = """
CREATE TABLE artifacts (sha256 TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, format INTEGER NOT NULL, create_time REAL NOT NULL);
CREATE TABLE audits (
    id TEXT PRIMARY KEY, request_id TEXT UNIQUE, request_hash TEXT NOT NULL, request BLOB NOT NULL, state INTEGER NOT NULL,
    create_time REAL NOT NULL, start_time REAL, end_time REAL, attempts INTEGER NOT NULL DEFAULT 0,
    last_sequence INTEGER NOT NULL DEFAULT 0, progress BLOB, error BLOB, report BLOB
);
"""


def test_a_key_is_stored_as_the_hash_of_its_token_and_found_by_the_token(tmp_path):
    path = tmp_path / "s.sqlite3"
    keys = KeyRing(path)
    assert not keys.any_issued()
    key, token = keys.create("alice")
    admin, admin_token = keys.create("root", admin=True)
    assert keys.any_issued() and token != admin_token and len(token) >= 43
    assert keys.find(token).as_principal() == Principal("alice") and keys.find(admin_token).as_principal() == Principal(
        "root", True
    )
    assert keys.find(token + "x") is None
    stored = sqlite3.connect(path).execute("SELECT token_sha256 FROM api_keys ORDER BY create_time").fetchall()
    assert [row[0] for row in stored] == [token_hash(token), token_hash(admin_token)]
    assert [k.id for k in keys.revoke("alice")] == [key.id]
    assert keys.find(token).revoked and not keys.find(admin_token).revoked
    assert keys.revoke("alice") == []  # nothing live left
    keys.revoke(admin.id)
    assert keys.any_issued()  # revoking every key does not reopen the server to anonymous callers


@pytest.mark.parametrize("name", ["", "anonymous", "-x", "a b", "CN=alice", "x" * 65])
def test_key_names_are_plain_principals(tmp_path, name):
    with pytest.raises(InvalidKeyName):
        KeyRing(tmp_path / "s.sqlite3").create(name)


def test_an_old_data_dir_becomes_the_anonymous_principals(tmp_path):
    path = tmp_path / "s.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    request = audit_pb2.CreateAuditRequest(request_id="r1")
    old.execute(
        "INSERT INTO audits (id, request_id, request_hash, request, state, create_time) VALUES ('a1', 'r1', 'h', ?, 1, 1.0)",
        (request.SerializeToString(),),
    )
    old.execute("INSERT INTO artifacts VALUES (?, 10, 1, 1.0)", ("f" * 64,))
    old.commit()
    old.close()
    store = AuditStore(path)
    assert store.get("a1").owner == "anonymous" and store.find_by_request_id("r1").id == "a1"
    assert store.get_artifact("f" * 64, "anonymous") is not None and store.get_artifact("f" * 64, "alice") is None
    assert store.stored_bytes_by_owner() == {"anonymous": 10}
    # Audits from before quotas count no training.
    assert (store.stored_bytes("anonymous", {}), *store.usage("anonymous", since=0.0)) == (10, 1, 0)
    store.close()
    AuditStore(path).close()  # opening a migrated store again changes nothing


def test_request_ids_and_cached_reports_belong_to_their_principal(tmp_path):
    store = AuditStore(tmp_path / "s.sqlite3")
    request = audit_pb2.CreateAuditRequest(request_id="same")
    mine, created = store.create_audit(request, "h", "alice")
    theirs, created_too = store.create_audit(request, "h", "bob")
    assert created and created_too and mine.id != theirs.id
    assert (mine.owner, theirs.owner) == ("alice", "bob") and mine.to_proto().request_id == "same"
    assert store.find_by_request_id("same", "alice").id == mine.id and store.find_by_request_id("same") is None
    store.finish(mine.id, State.AUDIT_STATE_SUCCEEDED)
    assert store.find_succeeded("h", "alice").id == mine.id and store.find_succeeded("h", "bob") is None
    assert [r.id for r in store.list(10, None, "bob")] == [theirs.id] and len(store.list(10, None)) == 2


def test_shared_bytes_count_for_each_owner(tmp_path):
    store = AuditStore(tmp_path / "s.sqlite3")
    assert store.put_artifact("a" * 64, 100, 1, "alice")[1]
    assert store.put_artifact("a" * 64, 100, 1, "bob")[1]
    assert not store.put_artifact("a" * 64, 100, 1, "bob")[1]
    store.put_artifact("b" * 64, 7, 1, "alice")
    assert store.stored_bytes_by_owner() == {"alice": 107, "bob": 100}


def test_who_sees_what():
    assert ANONYMOUS.sees("anonymous") and not ANONYMOUS.sees("alice")
    assert Principal("root", admin=True).sees("alice") and Principal("root", admin=True).owner_filter is None


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        ("ipv4:127.0.0.1:5000", True),
        ("ipv6:[::1]:5000", True),
        ("ipv6:%5B::1%5D:5000", True),
        ("unix:/tmp/s", True),
        ("ipv4:10.0.0.2:5000", False),
        ("ipv6:[2001:db8::1]:1", False),
    ],
)
def test_loopback_peers(peer, loopback):
    assert _is_loopback(peer) is loopback


def test_exposure_rules(tmp_path, caplog):
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("example.org")
    check_exposure("127.0.0.1", None, keys_issued=False, insecure=False)
    tls = ServerTls(tmp_path / "c", tmp_path / "k")
    with pytest.raises(SystemExit, match="without TLS"):
        check_exposure("0.0.0.0", None, keys_issued=True, insecure=False)
    with pytest.raises(SystemExit, match="without authentication"):
        check_exposure("0.0.0.0", tls, keys_issued=False, insecure=False)
    check_exposure("0.0.0.0", tls, keys_issued=True, insecure=False)
    check_exposure(
        "0.0.0.0", ServerTls(tmp_path / "c", tmp_path / "k", tmp_path / "ca"), keys_issued=False, insecure=False
    )
    check_exposure("0.0.0.0", None, keys_issued=False, insecure=True)
    assert "--insecure" in caplog.text
