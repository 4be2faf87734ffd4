"""Kept provisions: a template is named by everything that went into it, holds the
provisioned files and nothing a DC writes for itself, and is private."""

from __future__ import annotations

import os
import stat
import time

import pytest

from conformance.targets import provisions

INPUTS = dict(samba_version="Version 4.17.12-Debian\n", provision_args=["domain", "provision", "--realm=LAB.TEST"],
              config="[global]\n\trealm = LAB.TEST\n", user_names=("a", "b"), setup="join ca01")


@pytest.mark.parametrize("changed", [
    {"samba_version": "Version 4.19.5"},
    {"provision_args": ["domain", "provision", "--realm=OTHER.TEST"]},
    {"config": "[global]\n\trealm = LAB.TEST\n\tinterfaces = 127.0.0.3/8\n"},
    {"user_names": ("a",)},
    {"setup": ""},
])
def test_every_input_names_another_template(changed):
    assert provisions.template_key(**{**INPUTS, **changed}) != provisions.template_key(**INPUTS)


def test_the_name_does_not_depend_on_the_order_of_users_or_trailing_space():
    again = {**INPUTS, "user_names": ("b", "a"), "samba_version": "Version 4.17.12-Debian"}
    assert provisions.template_key(**again) == provisions.template_key(**INPUTS)


def provisioned(directory):
    """The shape of a provisioned DC directory, with the files a DC writes for itself."""
    (directory / "private").mkdir(parents=True)
    (directory / "private" / "sam.ldb").write_bytes(b"database")
    (directory / "etc").mkdir()
    (directory / "etc" / "smb.conf").write_text(f"private dir = {directory}/private\n")
    (directory / "krb5.conf").write_text("kdc = 127.0.0.1\n")
    (directory / "samba-tool.log").write_text("$ samba-tool domain provision\n")
    (directory / "log.samba").write_text("started\n")
    (directory / "CA01$.keytab").write_bytes(b"keys")
    return directory


def test_a_kept_template_restores_the_provision_and_not_the_dcs_own_files(tmp_path):
    root, first = tmp_path / "templates", provisioned(tmp_path / "first")
    assert provisions.keep(root, "k", first, admin_password="Admin-1", users={"a": "pw-a"})
    second = tmp_path / "second"
    (second / "etc").mkdir(parents=True)
    (second / "etc" / "smb.conf").write_text("mine\n")
    meta = provisions.restore(root, "k", second)
    assert meta == {"admin_password": "Admin-1", "users": {"a": "pw-a"}}
    assert (second / "private" / "sam.ldb").read_bytes() == b"database"
    assert (second / "CA01$.keytab").read_bytes() == b"keys"
    assert (second / "etc" / "smb.conf").read_text() == "mine\n"  # its own, naming its own directory
    assert not (second / "krb5.conf").exists() and not (second / "samba-tool.log").exists()
    assert not (second / "log.samba").exists() and not (second / "template.json").exists()


def test_a_template_is_private(tmp_path):
    root = tmp_path / "templates"
    provisions.keep(root, "k", provisioned(tmp_path / "dc"), admin_password="Admin-1", users={})
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / "k" / "template.json").st_mode) == 0o600


def test_the_first_kept_template_stays(tmp_path):
    root = tmp_path / "templates"
    assert provisions.keep(root, "k", provisioned(tmp_path / "one"), admin_password="first", users={})
    assert not provisions.keep(root, "k", provisioned(tmp_path / "two"), admin_password="second", users={})
    assert provisions.restore(root, "k", tmp_path / "three")["admin_password"] == "first"
    assert [p.name for p in root.iterdir()] == ["k"]  # no staging left behind


def test_no_template_and_a_discarded_one_restore_nothing(tmp_path):
    root = tmp_path / "templates"
    assert provisions.restore(root, "k", tmp_path / "dc") is None
    provisions.keep(root, "k", provisioned(tmp_path / "one"), admin_password="x", users={})
    provisions.discard(root, "k")
    assert provisions.restore(root, "k", tmp_path / "dc") is None
    assert list(root.iterdir()) == []


def test_templates_are_kept_where_the_environment_says_or_not_at_all(monkeypatch, tmp_path):
    monkeypatch.setenv(provisions.TEMPLATES_ENV, str(tmp_path))
    assert provisions.template_root() == tmp_path
    monkeypatch.setenv(provisions.TEMPLATES_ENV, "off")
    assert provisions.template_root() is None
    monkeypatch.delenv(provisions.TEMPLATES_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert provisions.template_root() == tmp_path / "cache" / "wcce-conformance" / "samba"


def test_a_template_older_than_a_week_is_made_again(tmp_path):
    """Its accounts' passwords would expire (AD's maxPwdAge, 42 days): it is dropped."""
    root = tmp_path / "templates"
    provisions.keep(root, "k", provisioned(tmp_path / "one"), admin_password="x", users={})
    old = time.time() - provisions.MAX_AGE_SECONDS - 60
    os.utime(root / "k" / "template.json", (old, old))
    assert provisions.restore(root, "k", tmp_path / "dc") is None
    assert not (root / "k").exists()


@pytest.mark.parametrize("damage", [b"{not json", b"[]"])
def test_a_damaged_template_is_dropped_so_it_can_be_kept_again(tmp_path, damage):
    root = tmp_path / "templates"
    provisions.keep(root, "k", provisioned(tmp_path / "one"), admin_password="x", users={})
    (root / "k" / "template.json").write_bytes(damage)
    assert provisions.restore(root, "k", tmp_path / "dc") is None
    assert provisions.keep(root, "k", provisioned(tmp_path / "two"), admin_password="y", users={})
    assert provisions.restore(root, "k", tmp_path / "dc2")["admin_password"] == "y"


def test_discarding_nothing_leaves_nothing(tmp_path):
    root = tmp_path / "templates"
    root.mkdir()
    provisions.discard(root, "absent")
    assert list(root.iterdir()) == []


def test_keeping_sweeps_expired_templates_and_copies_a_killed_process_left(tmp_path):
    root = tmp_path / "templates"
    provisions.keep(root, "old-shape", provisioned(tmp_path / "one"), admin_password="x", users={})
    long_ago = time.time() - provisions.MAX_AGE_SECONDS - 60
    os.utime(root / "old-shape" / "template.json", (long_ago, long_ago))
    for name, age in ((".new-abandoned", 7200), (".old-abandoned", 7200), (".new-busy", 10)):
        (root / name).mkdir()
        os.utime(root / name, (time.time() - age, time.time() - age))
    provisions.keep(root, "k", provisioned(tmp_path / "two"), admin_password="x", users={})
    assert sorted(p.name for p in root.iterdir()) == [".new-busy", "k"]  # another process's copy in progress stays
