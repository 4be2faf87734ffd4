"""Provisioned Samba domains kept for the next DC of the same shape.

``samba-tool domain provision`` takes 5-9 s of a core, and every throwaway DC of a run (the
lab domain, calibrate's, the Samba tests') made one again, with the same realm, names and
configuration.  Its result depends on nothing else (the directory it was made in appears in
``etc/smb.conf`` alone, which each DC writes for itself), so the first DC of a shape keeps a
copy of its provisioned directory, and the next DC of that shape starts from a copy of the
copy: a fresh, private database each time, made in a fraction of a second.

A template is keyed by what went into it: Samba's version, the provision's arguments (the
directory and the password masked), our ``smb.conf`` (the directory masked) and the users
created and the setup step run before the DC started; a change to any of them makes another template.  Templates
are made again after a week (the passwords in them would expire after AD's 42 days; keeping a
template sweeps expired ones and copies left by a killed process away), and live in ``$WCCE_SAMBA_TEMPLATES`` (default ``~/.cache/wcce-conformance/samba``, mode 0700,
with the lab accounts' passwords in each template's ``template.json``, mode 0600); set it to
``off`` to provision every DC afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping

__all__ = ["TEMPLATES_ENV", "template_root", "template_key", "restore", "keep", "discard"]

TEMPLATES_ENV = "WCCE_SAMBA_TEMPLATES"
#: bumped when what a template holds, or how it is restored, changes
FORMAT = 1
_META = "template.json"
#: a template older than this is made again: AD's default maxPwdAge (42 days) would expire the
#: passwords it was provisioned with (the KDC then answers KDC_ERR_KEY_EXPIRED)
MAX_AGE_SECONDS = 7 * 24 * 3600
_STAGING, _DISCARDED = ".new-", ".old-"
#: a staging or discarded copy this old belongs to a process that did not finish (a copy takes
#: under a second)
_ABANDONED_SECONDS = 3600
#: files a DC writes for itself (its configuration names its directory) or logs: never kept
_OWN = ("etc/smb.conf", "krb5.conf", "samba-tool.log", "samba.log")


def template_root() -> pathlib.Path | None:
    """Where templates are kept, or None when ``WCCE_SAMBA_TEMPLATES=off``."""
    value = os.environ.get(TEMPLATES_ENV, "").strip()
    if value.lower() == "off":
        return None
    if value:
        return pathlib.Path(value)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache) / "wcce-conformance" / "samba"


def template_key(*, samba_version: str, provision_args: Iterable[str], config: str,
                 user_names: Iterable[str], setup: str = "") -> str:
    """The name of the template for a DC made by these inputs (the caller masks the
    directory and the password out of ``provision_args`` and ``config``; ``setup`` names
    what else was done to the database before it started)."""
    material = json.dumps({"format": FORMAT, "samba": samba_version.strip(), "provision": list(provision_args),
                           "config": config, "users": sorted(user_names), "setup": setup}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _kept(relative: str) -> bool:
    return relative not in _OWN and not relative.startswith("log.")


def restore(root: pathlib.Path, key: str, directory: pathlib.Path) -> dict | None:
    """Copy the template ``key`` into ``directory`` (which holds the DC's own configuration);
    returns what the template recorded (``admin_password``, ``users``), or None when there is
    no such template."""
    source = root / key
    if not source.is_dir():
        return None
    try:
        meta = json.loads((source / _META).read_text())
        age = time.time() - (source / _META).stat().st_mtime
        broken = not isinstance(meta, dict)
    except (OSError, ValueError):  # a template is renamed into place whole: this one is damaged
        broken = True
    if broken or not 0 <= age <= MAX_AGE_SECONDS:
        discard(root, key)
        return None
    # copy2 keeps the NT ACLs provisioning wrote in security.* extended attributes (as root)
    shutil.copytree(source, directory, dirs_exist_ok=True, symlinks=True, copy_function=shutil.copy2,
                    ignore=lambda where, names: [_META] if pathlib.Path(where) == source else [])
    return meta


def keep(root: pathlib.Path, key: str, directory: pathlib.Path, *, admin_password: str,
         users: Mapping[str, str]) -> bool:
    """Keep ``directory``, just provisioned (the DC not yet started), as template ``key``.
    False when it could not be kept (another process kept one first, a full disk): the DC
    does not depend on it."""
    if (root / key).exists():
        return False
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _sweep(root)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=_STAGING, dir=root))
    except OSError:
        return False
    try:
        def own_files(where: str, names: list[str]) -> list[str]:
            base = pathlib.Path(where).relative_to(directory)
            return [n for n in names if not _kept((base / n).as_posix())]

        shutil.copytree(directory, staging, dirs_exist_ok=True, symlinks=True, copy_function=shutil.copy2,
                        ignore=own_files)
        meta = staging / _META
        fd = os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"admin_password": admin_password, "users": dict(users)}, out)
        os.rename(staging, root / key)  # atomic; fails when another process kept it first
        return True
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return False


def discard(root: pathlib.Path, key: str) -> None:
    """Remove template ``key`` (damaged, expired, or a DC made from it did not start)."""
    target = root / key
    if not target.exists():
        return
    try:
        graveyard = pathlib.Path(tempfile.mkdtemp(prefix=_DISCARDED, dir=root))
    except OSError:
        return
    try:
        os.rename(target, graveyard / key)  # out of sight at once, then removed
    except OSError:
        pass
    shutil.rmtree(graveyard, ignore_errors=True)


def _sweep(root: pathlib.Path) -> None:
    """Remove what no DC will use again: templates past their age (another Samba version's or
    shape's among them), and the staging or discarded copies of a process that was killed."""
    now = time.time()
    for entry in root.iterdir():
        try:
            if entry.name.startswith((_STAGING, _DISCARDED)):
                if now - entry.stat().st_mtime > _ABANDONED_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True)
            elif now - (entry / _META).stat().st_mtime > MAX_AGE_SECONDS:
                discard(root, entry.name)
        except OSError:
            continue
