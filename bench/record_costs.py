"""Record each case's cost (seconds) from a run's results.json into the table --shard
balances by (conformance/model/case_costs.json).

    .venv/bin/wcce-conformance run -n 2 --report-dir /tmp/costs
    .venv/bin/python bench/record_costs.py /tmp/costs/*/results.json
"""

from __future__ import annotations

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.model.shards import COSTS_FILE  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: record_costs.py RESULTS.json", file=sys.stderr)
        return 2
    document = json.loads(pathlib.Path(argv[0]).read_text())
    seconds = {c["id"]: round(float(c.get("seconds") or 0.0), 3) for c in document["cases"]}
    COSTS_FILE.write_text(json.dumps({
        "recorded": f"{document['run']['finished']} on {document['run'].get('hostname', '?')}, "
                    f"{document['run']['workers']} worker(s), target {document['run']['target']['description']}",
        "seconds": dict(sorted(seconds.items()))}, indent=0) + "\n")
    print(f"{len(seconds)} case costs, {sum(seconds.values()):.1f} s in all -> {COSTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
