"""The CA's request database: SQLite in WAL mode, one row per request.

A request is written in one transaction together with its outcome (issued
certificate, pending, denied or failed), before the reply leaves the server; a
client that disconnects mid-call therefore finds the request stored exactly once,
and a crash never leaves a certificate without its row.  Serial numbers are
UNIQUE, so a repeat can never be stored.
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import sqlite3
import threading
import time

__all__ = ["RequestStatus", "StoredRequest", "RequestStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    submitted_at    REAL NOT NULL,
    requester       TEXT NOT NULL,
    template        TEXT,
    attributes      TEXT NOT NULL,
    request_der     BLOB,
    request_type    INTEGER NOT NULL,
    status          TEXT NOT NULL,
    disposition     INTEGER NOT NULL,
    message         TEXT NOT NULL,
    serial          TEXT UNIQUE,
    certificate_der BLOB,
    resolved_at     REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_SCHEMA_VERSION = "1"


class RequestStatus(enum.Enum):
    ISSUED = "issued"
    PENDING = "pending"
    DENIED = "denied"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StoredRequest:
    id: int
    submitted_at: float
    requester: str
    template: str | None
    attributes: str
    request_der: bytes | None
    request_type: int
    status: RequestStatus
    disposition: int
    message: str
    serial: str | None
    certificate_der: bytes | None
    resolved_at: float | None


def serial_text(number: int) -> str:
    """A serial number as stored and shown: lower-case hex of whole bytes (even length)."""
    text = f"{number:x}"
    return text if len(text) % 2 == 0 else "0" + text


class RequestStore:
    """Thread-safe: one connection, serialized by a lock (SQLite allows one writer)."""

    def __init__(self, path: pathlib.Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def submit(self, *, requester: str, template: str | None, attributes: str,
               request_der: bytes | None, request_type: int, decide) -> StoredRequest:
        """Store a new request and its outcome atomically.

        ``decide(request_id) -> (status, disposition, message, serial, certificate_der)``
        runs inside the transaction, so the id it sees is the id that is stored.
        A serial collision raises sqlite3.IntegrityError and stores nothing.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO requests (submitted_at, requester, template, attributes, "
                    "request_der, request_type, status, disposition, message) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'failed', 1, '')",
                    (time.time(), requester, template, attributes, request_der, request_type),
                )
                request_id = cur.lastrowid
                status, disposition, message, serial, cert = decide(request_id)
                self._db.execute(
                    "UPDATE requests SET status=?, disposition=?, message=?, serial=?, "
                    "certificate_der=?, resolved_at=? WHERE id=?",
                    (status.value, disposition, message, serial, cert,
                     time.time() if status is not RequestStatus.PENDING else None, request_id),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(request_id)

    def resolve(self, request_id: int, decide) -> StoredRequest | None:
        """Resolve a pending request (approve or deny); ``decide(row)`` as in submit."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._row("SELECT * FROM requests WHERE id=?", (request_id,))
                if row is None or row.status is not RequestStatus.PENDING:
                    self._db.execute("ROLLBACK")
                    return row
                status, disposition, message, serial, cert = decide(row)
                self._db.execute(
                    "UPDATE requests SET status=?, disposition=?, message=?, serial=?, "
                    "certificate_der=?, resolved_at=? WHERE id=?",
                    (status.value, disposition, message, serial, cert, time.time(), request_id),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(request_id)

    def _row(self, sql: str, args: tuple) -> StoredRequest | None:
        cur = self._db.execute(sql, args)
        row = cur.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cur.description]
        values = dict(zip(names, row))
        values["status"] = RequestStatus(values["status"])
        return StoredRequest(**values)

    def get(self, request_id: int) -> StoredRequest | None:
        with self._lock:
            return self._row("SELECT * FROM requests WHERE id=?", (request_id,))

    def by_serial(self, serial_hex: str) -> StoredRequest | None:
        """By serial number however it is written: upper or lower case, spaces between
        bytes, leading zeros or not (certutil writes even-length hex)."""
        try:
            number = int(serial_hex.replace(" ", ""), 16)
        except ValueError:
            return None
        with self._lock:  # stored as serial_text(); older stores without the leading zero
            return self._row("SELECT * FROM requests WHERE serial IN (?, ?)", (serial_text(number), f"{number:x}"))

    def all(self) -> list[StoredRequest]:
        with self._lock:
            cur = self._db.execute("SELECT id FROM requests ORDER BY id")
            ids = [r[0] for r in cur.fetchall()]
        return [self.get(i) for i in ids]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]

    def issued(self) -> list[StoredRequest]:
        return [r for r in self.all() if r.status is RequestStatus.ISSUED]
