"""The HTML report in headless Chromium: the summary and a case detail render, with no
JavaScript error; the 10k-case report renders, stays small and opens."""

from __future__ import annotations

import pathlib

from conformance.report.html import render_html
from conformance.testkit.synthetic import synthesize
from tests.support.browser import load


def test_summary_renders_with_no_script_error(reference_run, tmp_path):
    page = load(reference_run.dir / "report.html", screenshot=tmp_path / "summary.png")
    assert page.attribute("data-js-errors") == "0" and page.attribute("data-ready") is not None
    assert 'class="banner conformant"' in page.dom and ">Conformant<" in page.dom
    assert page.dom.count('class="cell PASS"') >= 20  # the requirement x variant matrix
    pages = -(-len(reference_run.document["cases"]) // 100)  # 100 cases a page
    assert pages > 1 and f"page 1 of {pages}" in page.dom
    assert (tmp_path / "summary.png").stat().st_size > 10_000


def test_a_failing_case_detail_renders(mutant_run, tmp_path):
    failing = next(c for c in mutant_run.document["cases"] if c["verdict"] == "FAIL")
    shot = tmp_path / "case.png"
    page = load(mutant_run.dir / "report.html", {"verdict": "FAIL", "case": failing["id"]}, screenshot=shot)
    assert page.attribute("data-js-errors") == "0"
    assert page.attribute("data-case-ready") == failing["id"]
    dom = page.dom
    assert ">Partial run — no verdict<" in dom
    assert "WCCE-T-21" in dom and "pwszAuthority must name the CA" in dom  # the requirement text
    assert "Expected" in dom and failing["actual"] in dom
    assert dom.count("──▶") >= 2 and "◀──" in dom  # the PDU ladder, both directions
    assert "encrypted" in dom  # the sealed stubs are shown as such
    assert failing["evidence"]["pcap"] in dom and "--case" in dom  # pcapng link and repro line
    assert "(1 case)" in dom or "cases)" in dom  # the list was filtered to FAIL
    assert shot.stat().st_size > 10_000


def test_ten_thousand_cases_render_small_and_open(reference_run, tmp_path):
    document = synthesize(reference_run.document, 10_000)
    out = render_html(document, tmp_path / "report.html")
    assert out.stat().st_size <= 20 * 1024 * 1024
    last = document["cases"][-1]["id"]
    page = load(out, {"case": last})
    assert page.attribute("data-js-errors") == "0" and page.attribute("data-case-ready") == last
    assert "page 100 of 100" in page.dom


def test_report_escapes_what_the_target_sends(reference_run, tmp_path):
    """Strings from the wire are text, never markup."""
    document = reference_run.document
    case = document["cases"][0]
    case["actual"] = '<img src=x onerror="document.title=1">'
    case["title"] = "</script><script>window.pwned=1</script>"
    out = render_html(document, tmp_path / "report.html")
    page = load(out, {"case": case["id"]})
    assert page.attribute("data-js-errors") == "0"
    assert "<img src=x" not in page.dom and "&lt;img src=x" in page.dom
    assert pathlib.Path(out).read_text().count("</script><script>window.pwned") == 0
