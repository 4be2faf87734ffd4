"""pytest plugin (entry point ``wcce_conformance``): conformance cases from ``cases/*.toml``,
run against a target.

Options (group "wcce-conformance"):

  --target PROFILE.toml   the target; default: the embedded reference CA, started per
                          worker on a loopback address of its own
  --requirement ID        only cases citing ID (repeatable)
  --case PREFIX           only cases whose ID starts with PREFIX (repeatable); -k works too
  --strict                pytest's own strict mode; here also: SHOULD violations (WARN)
                          fail (``strict = true`` in the ini file does the same)
  --mutant NAME           run the embedded CA as one of conformance.mutation.server's mutants
  --deviations FILE       accepted failures with reason and expiry
  --evidence-dir DIR      a pcapng per case
  --wcce-results FILE     every case's result as JSON (the report renders it)
  --wcce-cases DIR        also collect the case tables (*.toml) in DIR (repeatable)
  --shard K/N             run the K-th of N deterministic, cost-balanced parts of the selection
  --evidence-secrets      with --evidence-dir: the keys that decrypt the captures, in a keytab

Verdicts map onto pytest outcomes: PASS/INFO pass, FAIL fails, WARN passes with a
warning (fails under --strict), N/A skips, a FAIL covered by a live deviation is
an xfail (an expired one is a FAIL again), ERROR (a suite or configuration
problem) is a pytest error.  INCONCLUSIVE (the target could not be reached)
skips and turns the exit status into ``Exit.CONNECTION`` (6) when nothing failed: a
run that did not verify something is not a success.

This module is loaded by every pytest session on a machine where the suite is
installed, so it imports nothing but the standard library: the run's machinery
(:mod:`conformance.commands.pytest_run`) is imported when the session names a
conformance option or collects a case table, and the protocol stack when the first
case runs.
"""

from __future__ import annotations

import pathlib

_OPTIONS = ("target", "requirement", "case", "mutant", "deviations", "evidence_dir", "wcce_results", "wcce_cases",
            "shard")


def pytest_addoption(parser):
    group = parser.getgroup("wcce-conformance", "MS-WCCE transport conformance")
    group.addoption("--target", type=pathlib.Path, metavar="PROFILE.toml",
                    help="target profile (default: the embedded reference CA)")
    group.addoption("--requirement", action="append", default=[], metavar="ID",
                    help="only cases citing this requirement (repeatable)")
    group.addoption("--case", action="append", default=[], metavar="PREFIX",
                    help="only cases whose ID starts with PREFIX (repeatable)")
    group.addoption("--mutant", metavar="NAME", help="run the embedded reference CA as this mutant")
    group.addoption("--deviations", type=pathlib.Path, metavar="FILE",
                    help="accepted failures with reason and expiry (TOML)")
    group.addoption("--evidence-dir", type=pathlib.Path, metavar="DIR",
                    help="write each case's capture as DIR/<case>.pcapng")
    group.addoption("--wcce-results", type=pathlib.Path, metavar="FILE",
                    help="write every case's result as JSON")
    group.addoption("--wcce-cases", action="append", default=[], type=pathlib.Path, metavar="DIR",
                    help="also collect the case tables in DIR (repeatable)")
    group.addoption("--shard", metavar="K/N", help="run the K-th of N cost-balanced parts of the selection")
    group.addoption("--evidence-secrets", action="store_true",
                    help="also write the keys that decrypt the captures (EVIDENCE_DIR/secrets/wcce.keytab)")


def pytest_configure(config):
    config.addinivalue_line("markers", "wcce_case: a conformance case from cases/*.toml")
    # A session that names a conformance option is a conformance run: its options are
    # checked now (one line, before anything runs), and an xdist controller, which
    # collects nothing itself, must have the run to gather its workers' results.
    if any(getattr(config.option, name, None) for name in _OPTIONS) or _names_cases(config):
        _run(config)


def _names_cases(config) -> bool:
    """Whether the session's arguments (or testpaths) reach a case table."""
    args = config.args or list(config.getini("testpaths") or ())
    for arg in args:
        path = pathlib.Path(str(arg).split("::")[0])
        path = path if path.is_absolute() else config.invocation_params.dir / path
        if path.name == "cases" or path.parent.name == "cases" or (path / "cases").is_dir():
            return True
    return False


def _run(config):
    from conformance.commands.pytest_run import SESSION, start_run

    if SESSION not in config.stash:
        start_run(config)
    return config.stash[SESSION]


def _case_dirs(config) -> set[pathlib.Path]:
    return {pathlib.Path(d).resolve() for d in getattr(config.option, "wcce_cases", None) or ()}


def pytest_collect_file(file_path: pathlib.Path, parent):
    if file_path.suffix == ".toml" and (file_path.parent.name == "cases"
                                        or file_path.parent.resolve() in _case_dirs(parent.config)):
        _run(parent.config)
        from conformance.commands.pytest_run import CaseFile

        return CaseFile.from_parent(parent, path=file_path)
    return None
