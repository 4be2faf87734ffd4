"""What installing the suite costs an unrelated pytest session.

The package registers a pytest plugin (entry point ``wcce_conformance``), so every
pytest session in its environment loads it.  This runs one trivial test in an empty
directory, interleaved, with the plugin (as installed) and without it
(``-p no:wcce_conformance``), and prints the medians and their ratio (goal: <= 1.15).
It also reports which of the suite's heavy dependencies the plugin made the session
import (none should be).

    .venv/bin/python bench/bench_plugin.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

#: conftest of the unrelated session: reports what it ended up importing
PROBE = '''
import sys


def pytest_sessionfinish(session):
    heavy = sorted(m for m in ("scapy", "cryptography", "jinja2", "jsonschema", "conformance.judge",
                               "conformance.refca") if m in sys.modules)
    print("\\nHEAVY=" + ",".join(heavy))
'''


def session(directory: pathlib.Path, *extra: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *extra,
                          str(directory)], capture_output=True, text=True, check=True, cwd=directory)
    seconds = time.perf_counter() - start
    heavy = next((line[6:] for line in out.stdout.splitlines() if line.startswith("HEAVY=")), "?")
    return seconds, heavy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wcce-bench-plugin-") as scratch:
        directory = pathlib.Path(scratch)
        (directory / "conftest.py").write_text(PROBE)
        (directory / "test_unrelated.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        session(directory)  # warm the file cache
        with_plugin, without, heavy = [], [], set()
        for _ in range(args.rounds):
            seconds, loaded = session(directory)
            with_plugin.append(seconds)
            heavy.add(loaded)
            without.append(session(directory, "-p", "no:wcce_conformance")[0])
    a, b = statistics.median(with_plugin), statistics.median(without)
    print(f"unrelated pytest session, median of {args.rounds}: with the plugin {a * 1000:.0f} ms, "
          f"without {b * 1000:.0f} ms: ratio {a / b:.3f} (goal <= 1.15)")
    print(f"heavy modules the plugin made the session import: {', '.join(h for h in heavy if h) or 'none'}")
    return 0 if a / b <= 1.15 else 1


if __name__ == "__main__":
    sys.exit(main())
