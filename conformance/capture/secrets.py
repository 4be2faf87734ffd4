"""What Wireshark needs to open a run's captures decrypted, next to them.

Always ``EVIDENCE_DIR/DECRYPT.txt``: the exact tshark command and Wireshark preferences.
With ``--evidence-secrets`` (only then: the keys are secrets) ``EVIDENCE_DIR/secrets/wcce.keytab``
(mode 0600) holds every key a run's captures were protected with:
* the target's service keys (Kerberos: Wireshark's ``kerberos.file`` keytab opens the tickets,
  and from them the sealed stubs);
* an arcfour-hmac (etype 23) entry per NTLM account, whose key is the account's NT hash:
  Wireshark's NTLMSSP dissector takes NT hashes from the Kerberos keytab as well as from
  ``ntlmssp.nt_password`` (which holds one password; a run may use several accounts, and
  pcapng cannot carry NTLM keys).
Each worker writes its part (its embedded CA's accounts and keys); the controller joins them.
"""

from __future__ import annotations

import os
import pathlib

from conformance.wire.kerberos import keytab_bytes, keytab_entries

__all__ = ["write_worker_keys", "finish_evidence", "tshark_arguments", "KEYTAB_NAME"]

KEYTAB_NAME = "wcce.keytab"


def tshark_arguments(keytab: pathlib.Path | str) -> list[str]:
    return ["-o", "kerberos.decrypt:TRUE", "-o", f"kerberos.file:{keytab}"]


def _realm(target) -> str:
    if target.kerberos is not None:
        return target.kerberos.realm.upper()
    return (target.domain or "WORKGROUP").upper()


def write_worker_keys(evidence_dir: pathlib.Path, target, identities, service_keys, worker: str) -> pathlib.Path:
    """This process's part: the NT hashes of the accounts (``identities``: user -> NT hash, as
    the engine reads the wire with them), and the target's service keys."""
    realm = _realm(target)
    entries = [(f"{user}@{realm}", 23, bytes(hashed)) for user, hashed in sorted(identities.items())]
    for (principal, etype), key in sorted((getattr(service_keys, "keys", None) or {}).items()):
        entries.append((f"{principal}@{service_keys.realm or realm}", etype, bytes(key.key)))
    directory = evidence_dir / "secrets"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"part-{worker}.keytab"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(keytab_bytes(entries))
    return path


def finish_evidence(evidence_dir: pathlib.Path, *, secrets: bool) -> None:
    """Join the workers' parts into one keytab (with ``secrets``) and say how to decrypt."""
    keytab = evidence_dir / "secrets" / KEYTAB_NAME
    if secrets:
        entries: list[tuple[str, int, bytes]] = []
        for part in sorted((evidence_dir / "secrets").glob("part-*.keytab")):
            for entry in keytab_entries(part.read_bytes()):
                if entry not in entries:
                    entries.append(entry)
            part.unlink()
        fd = os.open(keytab, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(keytab_bytes(entries))
    example = next(iter(sorted(evidence_dir.glob("*.pcapng"))), None)
    name = example.name if example else "CASE.pcapng"
    keys = "secrets/" + KEYTAB_NAME
    (evidence_dir / "DECRYPT.txt").write_text(
        "The captures of this run, decrypted (Wireshark/tshark 4.0 or later):\n\n"
        + (f"  tshark -r {name} {' '.join(tshark_arguments(keys))} -V\n\n"
           f"{keys} (mode 0600: it holds secrets) has the target's Kerberos service keys, which open the\n"
           "tickets and the sealed Kerberos stubs, and one arcfour-hmac entry per NTLM account whose key is\n"
           "its NT hash, which Wireshark's NTLMSSP dissector uses to unseal NTLM stubs.  In Wireshark:\n"
           "Preferences > Protocols > KRB5: 'Try to decrypt Kerberos blobs' and 'Kerberos keytab file'.\n"
           if secrets else
           "This run was made without --evidence-secrets, so no key is stored here.  To decrypt:\n"
           f"  NTLM:     tshark -r {name} -o ntlmssp.nt_password:PASSWORD -V   (one account's password)\n"
           f"  Kerberos: tshark -r {name} -o kerberos.decrypt:TRUE -o kerberos.file:CA.keytab -V\n"
           "            (the keytab of the CA's service account; the profile's [kerberos] keytab)\n"
           "or run again with --evidence-secrets to have the keys written to secrets/wcce.keytab.\n"))
