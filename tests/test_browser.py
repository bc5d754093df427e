"""report.html in a real headless Chromium (Debian ``chromium``, driven by playwright).

Checks that every figure rendered, that the page logged no console error and asked for
nothing over the network, and that model output containing ``<script>`` and
``<img onerror=...>`` stayed text: it is shown verbatim and never runs. A 20-model pool
report stays under 10 MB and opens in under 10 s.

Screenshots of the summary and of one figure go to $PROVENANCE_SCREENSHOTS (default: the
test's temporary directory).

Marked ``slow`` and ``browser``: run by .ci/run after the default suite (``pytest -m slow``),
or alone with ``pytest -m browser``. Needs ``apt-get install chromium`` and the ``dev`` extra.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
ALL_RENDERED = """() => {
  const divs = Array.from(document.querySelectorAll('div.plotly-graph-div'));
  return divs.length > 0 && divs.every(d => d.classList.contains('js-plotly-plot') && d.querySelector('svg.main-svg'));
}"""
FIGURES = """() => Array.from(document.querySelectorAll('div.plotly-graph-div')).map(d => ({
  id: d.id, rendered: d.classList.contains('js-plotly-plot') && !!d.querySelector('svg.main-svg'),
  traces: (d.data || []).length, marks: d.querySelectorAll('.point, .bars path, .heatmaplayer image').length,
  height: d.getBoundingClientRect().height}))"""


def chromium_path() -> str:
    path = os.environ.get("PROVENANCE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian chromium is not installed: apt-get install -y chromium (as .ci/run does)")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' installs playwright")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=chromium_path(), headless=True,
                                                   args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        yield ctx
        ctx.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("PROVENANCE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def open_page(browser, path: Path, timeout_s: float = 60) -> tuple:
    """(page, facts): load ``path`` and wait until every plotly figure has drawn; facts holds
    the seconds it took, console errors, page errors and every non-file request."""
    page = browser.new_page()
    facts: dict = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: facts["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: facts["errors"].append(str(e)))
    page.on("request", lambda r: facts["requests"].append(r.url) if not r.url.startswith("file://") else None)
    t0 = time.perf_counter()
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=timeout_s * 1000)
    page.wait_for_function(ALL_RENDERED, timeout=timeout_s * 1000)
    facts["seconds"] = time.perf_counter() - t0
    facts["figures"] = page.evaluate(FIGURES)
    facts["pwned"] = page.evaluate("() => typeof window.__pwned")
    return page, facts


def assert_clean(facts, min_figures: int):
    assert len(facts["figures"]) >= min_figures, facts["figures"]
    assert all(f["rendered"] and f["traces"] > 0 and f["height"] > 100 for f in facts["figures"]), facts["figures"]
    assert facts["console"] == [], facts["console"]
    assert facts["errors"] == [], facts["errors"]
    assert facts["requests"] == [], facts["requests"]  # self-contained: nothing fetched
    assert facts["pwned"] == "undefined"


def _inject(audit_dir: Path) -> str:
    """Put PAYLOAD into the candidate's stored answer behind the first piece of evidence
    (text and content hash updated together, as a hostile model's real answer would be)."""
    from provenance.models.base import text_hash

    report = json.loads((audit_dir / "report.json").read_text(encoding="utf-8"))
    resp = next(r for e in report["evidence"] for r in e["responses"] if r["role"] == "candidate")
    key, prefix, sample = resp["store_key"].split("/")
    text = f"{resp['text']} {PAYLOAD}"
    with sqlite3.connect(audit_dir / "store.sqlite") as conn:
        n = conn.execute("UPDATE responses SET text=?, content_hash=? WHERE model_key=? AND sample=? AND "
                         "substr(prompt_hash, 1, 16)=?", (text, text_hash(text), key, int(sample), prefix)).rowcount
    assert n == 1
    return text


def test_zoo_report_renders_and_model_output_never_runs(zoo_audit, tmp_path, browser, shots):
    from provenance.cli import main

    _, out, _ = zoo_audit
    audit_dir = tmp_path / "audit"
    shutil.copytree(out, audit_dir)
    hostile = _inject(audit_dir)
    r = CliRunner().invoke(main, ["report", str(audit_dir)])  # re-render from the store, offline
    assert r.exit_code == 0, r.output
    report = json.loads((audit_dir / "report.json").read_text(encoding="utf-8"))
    assert any(x["text"] == hostile for e in report["evidence"] for x in e["responses"]), "payload not in evidence"
    html = (audit_dir / "report.html").read_text(encoding="utf-8")
    assert PAYLOAD not in html and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html

    page, facts = open_page(browser, audit_dir / "report.html")
    assert_clean(facts, min_figures=8)
    assert "<script>window.__pwned=1</script>" in page.inner_text("#evidence")  # shown, as text
    assert page.locator("#evidence img").count() == 0
    page.locator("#summary").screenshot(path=str(shots / "zoo-summary.png"))
    page.locator(".figure:has(#b0-self_id-forest)").screenshot(path=str(shots / "zoo-self_id-forest.png"))
    page.locator(".figure:has(#b0-self_id-self-id)").screenshot(path=str(shots / "zoo-self_id-claims.png"))
    page.locator(".figure:has(#b1-quirks-quirks)").screenshot(path=str(shots / "zoo-quirks.png"))
    (shots / "zoo-facts.json").write_text(json.dumps(facts, indent=1), encoding="utf-8")
    page.close()


def test_hostile_labels_and_answers_stay_text_in_figures(zoo_audit, tmp_path, browser):
    """The payload as a model label and as a quirk answer: it reaches axis labels, hover text,
    tables and bar labels of every figure, and still never runs."""
    from provenance.report import write_report

    _, out, _ = zoo_audit
    text = (out / "report.json").read_text(encoding="utf-8")
    report = json.loads(text.replace('"control-3"', json.dumps(PAYLOAD)))
    for d in report["details"]:
        if d["kind"] == "quirks":
            g = d["groups"][0]["answers"]
            g["seqkd-a"] = {PAYLOAD: 5, **g["seqkd-a"]}
            g["teacher-a"] = {PAYLOAD: 5, **g["teacher-a"]}
    paths = write_report(report, tmp_path / "hostile")
    page, facts = open_page(browser, paths["html"])
    assert_clean(facts, min_figures=8)
    assert PAYLOAD in page.inner_text("#methods")  # the label, shown as text
    page.close()


def pool_report(n_models: int = 20, batteries=("self_id", "quirks", "ngram")) -> dict:
    """A pool comparison of ``n_models`` in the shape ``provenance compare`` writes (synthetic
    numbers; the shape is checked by the compare schema)."""
    import random

    from provenance.audit import tool_info

    rng = random.Random(7)
    labels = [f"model-{i:02d}" for i in range(n_models)]

    def est(x, n):
        h = 0.02 + 0.05 * rng.random()
        return {"estimate": x, "ci_low": max(0.0, x - h), "ci_high": min(1.0, x + h), "standard_error": h / 2,
                "confidence_level": 0.95, "method": "BCa cluster bootstrap over prompts", "n_prompts": n,
                "n_resamples": 9999, "seed": 0}

    pairs = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            by = {bat: est(rng.random() * 0.6, 100) for bat in batteries}
            pairs.append({"a": a, "b": b, "by_battery": by,
                          "combined": est(sum(e["estimate"] for e in by.values()) / len(by), 300)})
    rankings = []
    for cand in labels[:3]:
        entries = [{"reference": r, "score": est(rng.random() * 0.4, 300), "p_first": 0.0, "mean_rank": 1.0 + k,
                    "rank": k + 1} for k, r in enumerate(x for x in labels if x != cand)]
        entries[0]["p_first"] = 1.0
        rankings.append({"candidate": cand, "controls": labels[-3:], "score": "combined rank-scale excess",
                         "entries": entries})
    return {
        "schema_version": "1", "kind": "compare", "tool": tool_info(), "created_at": "2026-01-01T00:00:00+00:00",
        "pool": {"models": labels, "candidates": labels[:3], "controls": labels[-3:], "batteries": list(batteries),
                 "seed": 0, "samples": None},
        "models": [{"label": m, "model_string": f"transcripts/pool.jsonl#{m}", "provider": "transcripts",
                    "identity": {"provider": "transcripts", "name": m}, "identity_hash": f"{i:032x}"}
                   for i, m in enumerate(labels)],
        "batteries": [{"name": b, "version": "1", "scorer": b, "content_hash": f"{k:064x}", "n_prompts": 100}
                      for k, b in enumerate(batteries)],
        "statistics": {"confidence_level": 0.95, "n_resamples": 9999, "seed": 0,
                       "method": "BCa cluster bootstrap over prompts", "baseline": "both sides",
                       "weights": {b: 1 / len(batteries) for b in batteries}},
        "pairs": pairs, "rankings": rankings, "caveats": ["Synthetic numbers: a size and load-time check."],
    }


def test_twenty_model_pool_report_is_small_and_opens_fast(tmp_path, browser, shots):
    from provenance.report import validate_report, write_report
    from provenance.report.figures import heatmap_figure

    report = pool_report(20)
    validate_report(report)
    assert heatmap_figure(report) is not None
    paths = write_report(report, tmp_path / "pool")
    size = paths["html"].stat().st_size
    assert size < 10_000_000, f"report.html is {size / 1e6:.1f} MB"
    page, facts = open_page(browser, paths["html"])
    assert_clean(facts, min_figures=1)
    assert facts["seconds"] < 10, f"opened in {facts['seconds']:.1f} s"
    page.locator(".js-plotly-plot").first.screenshot(path=str(shots / "pool-heatmap.png"))
    (shots / "pool-facts.json").write_text(json.dumps({"bytes": size, **facts}, indent=1), encoding="utf-8")
    page.close()
