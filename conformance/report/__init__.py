"""Outputs of a run: results.json (the source of truth, with its JSON Schema), the
self-contained HTML report, JUnit XML, and the release gate — all rendered from
results.json."""
