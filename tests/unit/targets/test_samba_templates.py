"""SambaDC's use of kept provisions, with Samba's steps replaced by stand-ins (the real DC is
tests/integration/test_samba.py's): a kept provision that does not restore or start is
dropped and the DC provisioned afresh, once — even where the drop fails (a read-only cache)."""

from __future__ import annotations

import pytest

from conformance.targets import provisions, samba
from conformance.targets.samba import SambaDC, SambaError


@pytest.fixture
def stand_ins(monkeypatch):
    """Samba's steps as stand-ins: a provision writes GOOD into private/sam.ldb; a start fails on
    anything else.  Returns the list of what the starts saw."""
    seen: list[bytes] = []
    monkeypatch.setattr(samba, "_tool", lambda name: "/bin/echo")  # "samba -V" prints "-V"
    monkeypatch.setattr(samba.os, "geteuid", lambda: 0)
    monkeypatch.setattr(SambaDC, "_check_ports_free", lambda self: None)

    def provision(self):
        (self.directory / "private" / "sam.ldb").write_bytes(b"GOOD")

    def add_user(self, name, password=None):
        self.users[name] = password or "pw-" + name
        return self.users[name]

    def start(self):
        database = (self.directory / "private" / "sam.ldb").read_bytes()
        seen.append(database)
        if database != b"GOOD":
            raise SambaError("samba exited with status 1: the database does not open")

    monkeypatch.setattr(SambaDC, "_provision", provision)
    monkeypatch.setattr(SambaDC, "add_user", add_user)
    monkeypatch.setattr(SambaDC, "_start_samba", start)
    return seen


def _kept(root):
    (key,) = [p for p in root.iterdir() if not p.name.startswith(".")]
    return key


def test_a_kept_provision_is_used_and_one_that_does_not_start_is_dropped(stand_ins, tmp_path):
    root = tmp_path / "templates"
    with SambaDC(user_names=("alice",), templates=root) as first:
        assert not first.from_template
    with SambaDC(user_names=("alice",), templates=root) as second:
        assert second.from_template and second.users["alice"] == first.users["alice"]
    (_kept(root) / "private" / "sam.ldb").write_bytes(b"BROKEN")
    with SambaDC(user_names=("alice",), templates=root) as third:
        assert not third.from_template
    assert stand_ins == [b"GOOD", b"GOOD", b"BROKEN", b"GOOD"]
    assert (_kept(root) / "private" / "sam.ldb").read_bytes() == b"GOOD"  # kept afresh


def test_a_template_that_cannot_be_dropped_is_tried_once(stand_ins, tmp_path, monkeypatch):
    root = tmp_path / "templates"
    with SambaDC(templates=root):
        pass
    (_kept(root) / "private" / "sam.ldb").write_bytes(b"BROKEN")
    monkeypatch.setattr(provisions, "discard", lambda root, key: None)  # a read-only cache
    with SambaDC(templates=root) as dc:
        assert not dc.from_template
    assert stand_ins == [b"GOOD", b"BROKEN", b"GOOD"]
    with SambaDC(templates=root) as again:  # the next DC tries it again, once
        assert not again.from_template
    assert stand_ins[3:] == [b"BROKEN", b"GOOD"]


def test_a_template_that_does_not_restore_is_dropped(stand_ins, tmp_path):
    root = tmp_path / "templates"
    with SambaDC(user_names=("alice",), templates=root):
        pass
    (_kept(root) / "template.json").write_text('{"admin_password": "x", "users": {}}')  # alice's missing
    with SambaDC(user_names=("alice",), templates=root) as dc:
        assert not dc.from_template and dc.users["alice"] == "pw-alice"
    assert stand_ins == [b"GOOD", b"GOOD"]


def test_a_dc_that_fails_without_a_template_fails_once(stand_ins, tmp_path, monkeypatch):
    monkeypatch.setattr(SambaDC, "_provision", lambda self: (self.directory / "private" / "sam.ldb").write_bytes(b"BAD"))
    with pytest.raises(SambaError, match="does not open"):
        SambaDC(templates=tmp_path / "templates").start()
    assert stand_ins == [b"BAD"]
