"""The SQLite request store: atomic submit, unique serials, WAL on disk."""

from __future__ import annotations

import sqlite3

import pytest

from conformance.refca.store import RequestStatus, RequestStore


def _submit(store, decide):
    return store.submit(requester="LAB\\alice", template="User", attributes="", request_der=b"x",
                        request_type=0x100, decide=decide)


def test_submit_stores_outcome_with_its_id(tmp_path):
    store = RequestStore(tmp_path / "db.sqlite3")
    row = _submit(store, lambda rid: (RequestStatus.ISSUED, 3, "Issued", f"{rid:x}", b"cert"))
    assert (row.id, row.status, row.serial, row.certificate_der) == (1, RequestStatus.ISSUED, "1", b"cert")
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failing_decision_stores_nothing(tmp_path):
    store = RequestStore(tmp_path / "db.sqlite3")

    def boom(_):
        raise RuntimeError("signing failed")

    with pytest.raises(RuntimeError):
        _submit(store, boom)
    assert store.count() == 0


def test_serials_are_unique(tmp_path):
    store = RequestStore(tmp_path / "db.sqlite3")
    _submit(store, lambda rid: (RequestStatus.ISSUED, 3, "Issued", "abc", b"c"))
    with pytest.raises(sqlite3.IntegrityError):
        _submit(store, lambda rid: (RequestStatus.ISSUED, 3, "Issued", "abc", b"c"))
    assert store.count() == 1


def test_resolve_only_touches_pending(tmp_path):
    store = RequestStore(tmp_path / "db.sqlite3")
    pending = _submit(store, lambda rid: (RequestStatus.PENDING, 5, "Taken Under Submission", None, None))
    issued = store.resolve(pending.id, lambda row: (RequestStatus.ISSUED, 3, "Issued", "ff", b"c"))
    assert issued.status is RequestStatus.ISSUED and issued.resolved_at is not None
    again = store.resolve(pending.id, lambda row: (RequestStatus.DENIED, 2, "Denied", None, None))
    assert again.status is RequestStatus.ISSUED  # already resolved: unchanged
    assert store.resolve(999, lambda row: None) is None



def test_serials_are_whole_bytes_and_found_however_written(tmp_path):
    from conformance.refca.store import serial_text

    assert serial_text(0xABC) == "0abc" and serial_text(0x1234) == "1234"
    store = RequestStore(tmp_path / "db.sqlite3")
    row = _submit(store, lambda rid: (RequestStatus.ISSUED, 3, "Issued", serial_text(0xABC), b"cert"))
    for written in ("0abc", "abc", "0ABC", "0a bc", "00abc"):
        assert store.by_serial(written).id == row.id, written
    assert store.by_serial("xyz") is None and store.by_serial("abd") is None
    old = _submit(store, lambda rid: (RequestStatus.ISSUED, 3, "Issued", "def", b"cert2"))  # an older store
    assert store.by_serial("0def").id == old.id
