"""The object exporter's tables ([MS-DCOM] 3.1.1.1): OXID, OIDs, IPIDs, ping sets.

One OXID serves every object of this CA (one apartment).  Each activation makes
an object (OID) with one IPID per interface; IRemUnknown has its own IPID.
Objects not pinged for three ping periods are collected ([MS-DCOM] 3.1.2.2).
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
import uuid

from conformance.wire.dcom import HResult, IID_IREMUNKNOWN2

__all__ = ["ExportedInterface", "ObjectTable", "PING_PERIOD"]

#: [MS-DCOM] 3.1.2.2: "the ping period ... SHOULD be 120 seconds"; objects live 3 periods.
PING_PERIOD = 120.0
PING_PERIODS_TO_LIVE = 3


@dataclasses.dataclass(slots=True)
class ExportedInterface:
    ipid: uuid.UUID
    iid: uuid.UUID
    oid: int
    public_refs: int


@dataclasses.dataclass(slots=True)
class _Object:
    oid: int
    clsid: uuid.UUID
    ipids: set[uuid.UUID]
    last_ping: float
    owner: str | None = None  # who activated it; None: an unauthenticated activation


class ObjectTable:
    def __init__(self, *, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.oxid = secrets.randbits(63) | 1
        self.ipid_remunknown = uuid.uuid4()
        self._objects: dict[int, _Object] = {}
        self._interfaces: dict[uuid.UUID, ExportedInterface] = {}
        self._sets: dict[int, set[int]] = {}
        self._set_seen: dict[int, float] = {}
        self._interfaces[self.ipid_remunknown] = ExportedInterface(
            ipid=self.ipid_remunknown, iid=IID_IREMUNKNOWN2, oid=0, public_refs=1 << 30)

    def create_object(self, clsid: uuid.UUID, iids: list[uuid.UUID], refs: int = 5,
                      owner: str | None = None) -> tuple[int, dict[uuid.UUID, ExportedInterface]]:
        with self._lock:
            self._collect_locked()
            oid = secrets.randbits(63) | 1
            obj = _Object(oid=oid, clsid=clsid, ipids=set(), last_ping=self._clock(), owner=owner)
            self._objects[oid] = obj
            made = {}
            for iid in iids:
                made[iid] = self._add_interface_locked(obj, iid, refs)
            return oid, made

    def _add_interface_locked(self, obj: _Object, iid: uuid.UUID, refs: int) -> ExportedInterface:
        for ipid in obj.ipids:
            entry = self._interfaces[ipid]
            if entry.iid == iid:
                entry.public_refs += refs
                return entry
        entry = ExportedInterface(ipid=uuid.uuid4(), iid=iid, oid=obj.oid, public_refs=refs)
        self._interfaces[entry.ipid] = entry
        obj.ipids.add(entry.ipid)
        return entry

    def may_use(self, ipid: uuid.UUID, user: str | None) -> bool:
        """Whether ``user`` may call, query or count references on ``ipid``: the
        object's activator only (account names compare case-insensitively, as Windows')."""
        with self._lock:
            entry = self._interfaces.get(ipid)
            obj = self._objects.get(entry.oid) if entry else None
            if obj is None or obj.owner is None:
                return True
            return (user or "").casefold() == obj.owner.casefold()

    def lookup(self, ipid: uuid.UUID) -> ExportedInterface | None:
        with self._lock:
            return self._interfaces.get(ipid)

    def query_interface(self, ipid: uuid.UUID, iid: uuid.UUID, refs: int
                        ) -> ExportedInterface | None:
        """A new (or existing) IPID for ``iid`` on the object behind ``ipid``."""
        with self._lock:
            source = self._interfaces.get(ipid)
            obj = self._objects.get(source.oid) if source else None
            if obj is None:
                return None
            obj.last_ping = self._clock()
            return self._add_interface_locked(obj, iid, refs)

    def add_ref(self, ipid: uuid.UUID, refs: int) -> int:
        with self._lock:
            entry = self._interfaces.get(ipid)
            if entry is None or entry.oid == 0:
                return HResult.CO_E_OBJNOTREG
            entry.public_refs += refs
            return HResult.S_OK

    def release(self, ipid: uuid.UUID, refs: int) -> None:
        """Drop references; an object whose interfaces all reach zero goes away."""
        with self._lock:
            entry = self._interfaces.get(ipid)
            if entry is None or entry.oid == 0:
                return
            entry.public_refs = max(0, entry.public_refs - refs)
            if entry.public_refs == 0:
                self._drop_interface_locked(entry)

    def _drop_interface_locked(self, entry: ExportedInterface) -> None:
        self._interfaces.pop(entry.ipid, None)
        obj = self._objects.get(entry.oid)
        if obj is not None:
            obj.ipids.discard(entry.ipid)
            if not obj.ipids:
                self._objects.pop(obj.oid, None)

    def any_interface(self, iid: uuid.UUID) -> ExportedInterface | None:
        """Some exported interface of ``iid`` (used only by a mutant)."""
        with self._lock:
            return next((e for e in self._interfaces.values() if e.iid == iid), None)

    def touch(self, ipid: uuid.UUID) -> None:
        """An ORPC on an interface counts as a ping of its object."""
        with self._lock:
            entry = self._interfaces.get(ipid)
            obj = self._objects.get(entry.oid) if entry else None
            if obj is not None:
                obj.last_ping = self._clock()

    # -- pinging ([MS-DCOM] 3.1.2.5.1.2, 3.1.2.5.1.3) --------------------------------------

    def complex_ping(self, setid: int, add: list[int], remove: list[int]) -> int | None:
        """Returns the SETID, or None when ``setid`` is unknown."""
        with self._lock:
            if setid == 0:
                setid = secrets.randbits(63) | 1
                self._sets[setid] = set()
            if setid not in self._sets:
                return None
            members = self._sets[setid]
            members.difference_update(remove)
            members.update(oid for oid in add if oid in self._objects)
            self._ping_set_locked(setid)
            return setid

    def simple_ping(self, setid: int) -> bool:
        with self._lock:
            if setid not in self._sets:
                return False
            self._ping_set_locked(setid)
            return True

    def _ping_set_locked(self, setid: int) -> None:
        now = self._clock()
        self._set_seen[setid] = now
        for oid in self._sets[setid]:
            if oid in self._objects:
                self._objects[oid].last_ping = now

    def _collect_locked(self) -> None:
        deadline = self._clock() - PING_PERIOD * PING_PERIODS_TO_LIVE
        for oid in [o.oid for o in self._objects.values() if o.last_ping < deadline]:
            obj = self._objects.pop(oid)
            for ipid in obj.ipids:
                self._interfaces.pop(ipid, None)
        for setid in [s for s, seen in self._set_seen.items() if seen < deadline]:
            self._sets.pop(setid, None)
            self._set_seen.pop(setid, None)

    def object_count(self) -> int:
        with self._lock:
            return len(self._objects)
