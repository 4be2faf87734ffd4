"""``wcce-conformance calibrate``: the RPC-layer cases against an independent DCE/RPC server.

Provisions a throwaway Samba AD DC on 127.0.0.3 (:class:`conformance.targets.samba.SambaDC`; beside
the lab domain's DC on 127.0.0.1),
runs the RPC-layer cases (``rpce/``) against it with ``examples/samba-dc.toml`` — a plain
DCE/RPC target whose quirks cite Samba's own knownfail entries — and writes the same report
and exit code as ``run``.  Every case must PASS there, or be a deviation citing Samba's
knownfail: a disagreement is settled in the ledger with a source, never by widening a case.
"""

from __future__ import annotations

import os
import pathlib
import sys

from conformance.model.exitcodes import Exit
from conformance.model.shipped import EXAMPLES_DIR

__all__ = ["calibrate_command", "SAMBA_PROFILE", "RPC_LAYER"]

SAMBA_PROFILE = EXAMPLES_DIR / "samba-dc.toml"
RPC_LAYER = "rpce/"  # the cases' ID prefix; those needing DCOM are N/A on a plain endpoint
_PASSWORD_ENV = "WCCE_SAMBA_PASSWORD"


def _with_keytab(profile: pathlib.Path, dc) -> pathlib.Path:
    """The profile, with the keytab of the throwaway DC's own service in its [kerberos]
    section (a copy beside the keytab): with it the suite reads the protected PDUs of the
    Kerberos contexts as it reads NTLM ones, instead of leaving them unjudged."""
    text = pathlib.Path(profile).read_text("utf-8")
    if "[kerberos]" not in text or "keytab" in text.split("[kerberos]", 1)[1].split("\n[", 1)[0]:
        return profile  # no Kerberos, or the profile names its own keytab
    head, tail = text.split("[kerberos]", 1)
    keytab = dc.export_keytab()
    copy = keytab.parent / pathlib.Path(profile).name
    copy.write_text(f"{head}[kerberos]\nkeytab = {str(keytab)!r}{tail}", "utf-8")
    return copy


def calibrate_command(args, *, parse_run, out=sys.stderr) -> int:
    """``parse_run(argv)``: the CLI's own parsing of ``run`` arguments, so no option of ``run``
    is ever missing from the calibration's run (a hand-made Namespace once lacked new ones)."""
    from conformance.commands.run import run_suite
    from conformance.targets.samba import SECOND_DC_HOST, SambaDC, SambaError, samba_available

    if not samba_available():
        print("wcce-conformance: error: calibrate needs Samba (Debian samba, samba-dsdb-modules, "
              "samba-vfs-modules, samba-ad-provision; bash .ci/install installs them)", file=out)
        return Exit.USAGE
    try:
        with SambaDC(host=SECOND_DC_HOST) as dc:
            print(f"wcce-conformance: Samba AD DC {dc.realm} on {dc.host}:{dc.epm_port} (provisioned in "
                  f"{dc.provision_seconds:.1f} s)", file=out)
            os.environ[_PASSWORD_ENV] = dc.admin_password  # the profile names the variable
            run = parse_run(["--target", str(_with_keytab(args.profile, dc)), "--report-dir", str(args.report_dir),
                             "--case", RPC_LAYER] + (["--policy", str(args.policy)] if args.policy else []))
            return run_suite(run, out=out)
    except SambaError as exc:
        print(f"wcce-conformance: error: {exc}", file=out)
        return Exit.CONNECTION
    finally:
        os.environ.pop(_PASSWORD_ENV, None)
