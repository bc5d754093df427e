"""report.json / report.md / report.html: schema, escaping of untrusted text, offline HTML."""

from __future__ import annotations

import copy
import json
import re

import pytest

from provenance.report import ReportError, render_html, render_markdown, validate_report, write_report
from provenance.report.__main__ import main as rerender
from provenance.stats import Estimate

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"
VERDICT_WORDS = ("distilled", "stolen", "copied", "guilty")


def est(e, lo, hi, n=40, method="BCa cluster bootstrap over prompts"):
    return {"estimate": e, "ci_low": lo, "ci_high": hi, "standard_error": None if lo is None else (hi - lo) / 3.92,
            "confidence_level": 0.95, "method": method, "n_prompts": n, "n_resamples": 9999, "seed": 7}


def example_report() -> dict:
    """A small but complete audit: one candidate, two references, two controls, two batteries."""
    models = [
        ("student", "candidate", "hf/zoo/student-a"),
        ("teacher-a", "reference", "hf/zoo/teacher-a"),
        ("teacher-b", "reference", "openai/teacher-b"),
        ("indep-1", "control", "hf/zoo/indep-1"),
        ("indep-2", "control", "mock/indep-2"),
    ]
    results = []
    for battery, n in (("identity", 40), ("quirks", 25)):
        for ref, ex in (("teacher-a", (0.21, 0.15, 0.27)), ("teacher-b", (0.01, -0.04, 0.06))):
            results.append({
                "battery": battery, "reference": ref, "n_prompts": n,
                "similarity": est(0.45, 0.40, 0.50, n), "baseline": est(0.24, 0.20, 0.28, n),
                "excess": est(*ex, n), "ceiling": est(0.8, 0.75, 0.85, n),
                "controls": [
                    {"control": "indep-1", "similarity": est(0.25, 0.2, 0.3, n), "excess": est(0.02, -0.03, 0.07, n)},
                    {"control": "indep-2", "similarity": est(0.23, 0.2, 0.26, n), "excess": est(-0.02, None, None, n)},
                ],
            })
    return {
        "schema_version": "1",
        "kind": "audit",
        "tool": {"name": "provenance", "version": "0.1.0", "python": "3.12.3", "packages": {"numpy": "2.4.6"}},
        "created_at": "2025-06-01T12:00:00+00:00",
        "audit": {"candidate": "student", "references": ["teacher-a", "teacher-b"], "controls": ["indep-1", "indep-2"],
                  "batteries": ["identity", "quirks"], "seed": 7, "samples": None, "spec_file": None, "note": "extra ok"},
        "models": [
            {"label": label, "role": role, "model_string": ms, "provider": ms.split("/")[0],
             "identity": {"provider": ms.split("/")[0], "name": ms.split("/", 1)[1], "system_prompt": None},
             "identity_hash": f"sha256:{i:064x}"}
            for i, (label, role, ms) in enumerate(models)
        ],
        "batteries": [
            {"name": name, "version": "1", "description": f"{name} probes", "scorer": name,
             "content_hash": f"sha256:{i + 100:064x}", "n_prompts": n,
             "generation": {"samples": 5, "temperature": 0.8, "top_p": 1.0, "max_new_tokens": 64}}
            for i, (name, n) in enumerate((("identity", 40), ("quirks", 25)))
        ],
        "statistics": {"confidence_level": 0.95, "n_resamples": 9999, "seed": 7,
                       "method": "BCa cluster bootstrap over prompts", "baseline": "reference side: mean over controls of s(K, R)"},
        "results": results,
        "evidence": [{
            "battery": "identity", "prompt_id": "id-003", "prompt": "Who made you? <b>bold</b>",
            "reason": "largest per-prompt excess against teacher-a",
            "responses": [
                {"model": "student", "role": "candidate", "sample": 0, "text": f"I am Teacher A. {XSS_SCRIPT} {XSS_IMG}",
                 "content_hash": "sha256:" + "a" * 64, "store_key": "r:1", "feature": "claims teacher-a"},
                {"model": "teacher-a", "role": "reference", "sample": 2, "text": "I am Teacher A & friends.",
                 "content_hash": "sha256:" + "b" * 64, "store_key": "r:2", "feature": "claims teacher-a"},
            ],
        }],
        "caveats": ["Only 25 prompts in quirks; intervals are wide.", "indep-2 showed no variation on quirks."],
        "collection": {"requests": 900, "cached": 100, "seconds": 12.5,
                       "per_model": {"student": {"requests": 180, "cached": 20, "seconds": 2.5}}},
    }


def visible(html_text: str) -> str:
    """The page without the inlined plotly.js library (which is third-party code, not our words)."""
    return re.sub(r"<script\b[^>]*>.*?</script>", "", html_text, count=1, flags=re.S)


def test_example_validates_and_estimate_dicts_fit():
    r = example_report()
    validate_report(r)
    # What the stats module writes is what the schema accepts.
    r["results"][0]["excess"] = Estimate.from_dict(est(0.1, None, None)).to_dict()
    validate_report(r)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r["results"][1]["excess"].__setitem__("ci_low", "wide"), "results[1].excess.ci_low"),
        (lambda r: r.pop("caveats"), "caveats"),
        (lambda r: r["models"][2].__setitem__("role", "teacher"), "models[2].role"),
        (lambda r: r["batteries"][0]["generation"].pop("samples"), "batteries[0].generation.samples"),
        (lambda r: r.__setitem__("schema_version", "2"), "schema_version"),
        (lambda r: r["results"][0].__setitem__("surprise", 1), "results[0]"),
        (lambda r: r["results"][0]["similarity"].__setitem__("estimate", float("nan")), "results[0].similarity.estimate"),
        (lambda r: r["results"][0].__setitem__("reference", "nobody"), "results[0].reference"),
        (lambda r: r["evidence"][0]["responses"][1].__setitem__("model", "ghost"), "evidence[0].responses[1].model"),
    ],
)
def test_malformed_report_names_the_field(mutate, field):
    r = example_report()
    mutate(r)
    with pytest.raises(ValueError) as info:
        validate_report(r)
    assert isinstance(info.value, ReportError)
    message = str(info.value)
    assert field in message and "\n" not in message


def test_write_report_writes_three_files(tmp_path):
    r = example_report()
    paths = write_report(r, tmp_path / "out")
    assert set(paths) == {"json", "md", "html"}
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == r
    assert paths["json"].read_text(encoding="utf-8").startswith('{\n "schema_version": "1"')


def test_write_report_refuses_invalid_and_writes_nothing(tmp_path):
    r = example_report()
    del r["tool"]
    with pytest.raises(ValueError, match="tool"):
        write_report(r, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_html_escapes_untrusted_text():
    r = example_report()
    r["models"][0]["model_string"] = f"hf/{XSS_SCRIPT}"
    r["batteries"][1]["description"] = XSS_IMG
    r["caveats"].append(XSS_SCRIPT)
    page = render_html(r)
    for bad in (XSS_SCRIPT, XSS_IMG, "<script>alert", "<img src=x", "<b>bold</b>"):
        assert bad not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "I am Teacher A &amp; friends." in page
    # Only our own scripts: plotly.js inline and one newPlot call per figure, each with the
    # page's nonce (the Content-Security-Policy runs no other script).
    nonce = re.search(r"script-src &#x27;nonce-([0-9a-f]+)&#x27;", page).group(1)
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts == [f'<script nonce="{nonce}">'] * (1 + page.count('class="plotly-graph-div"'))
    assert len(scripts) >= 4


def test_html_is_self_contained():
    page = render_html(example_report())
    assert "Plotly.newPlot" in page
    assert len(page) > 1_000_000  # plotly.js itself is inline
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=[\"']?https?:", page)
    assert "@import" not in page


def test_html_summary_states_magnitude_in_words():
    page = visible(render_html(example_report()))
    assert "excess similarity 0.21 (95% CI 0.15 to 0.27, BCa cluster bootstrap over 40 prompts)" in page
    assert "the interval lies above zero" in page
    assert "the interval includes zero" in page
    assert "sha256:" + f"{100:064x}" in page  # battery content hash in the manifest
    assert "forest-plot" in page


def test_markdown_has_results_table_and_hashes():
    md = render_markdown(example_report())
    assert "| Battery | Reference | Prompts | Similarity | Baseline | Excess (95% CI) |" in md
    assert "| identity | teacher-a | 40 | 0.45 [0.40, 0.50] | 0.24 [0.20, 0.28] | 0.21 [0.15, 0.27] |" in md
    assert "sha256:" + f"{101:064x}" in md
    assert "python -m provenance.report report.json" in md
    assert len(md.splitlines()) < 60


def test_markdown_escapes_table_breakers():
    r = example_report()
    r["models"][1]["model_string"] = "hf/a|b\n<script>"
    md = render_markdown(r)
    assert "a\\|b &lt;script&gt;" in md and "<script>" not in md


def test_no_controls_says_no_baseline():
    r = example_report()
    r["models"] = [m for m in r["models"] if m["role"] != "control"]
    r["audit"]["controls"] = []
    for res in r["results"]:
        res.update(baseline=None, excess=None, controls=[])
    validate_report(r)
    assert "no baseline exists" in render_markdown(r)
    page = visible(render_html(r))
    assert "no baseline exists" in page and "No excess estimates to plot" in page


def test_no_verdict_words_in_any_output(tmp_path):
    paths = write_report(example_report(), tmp_path)
    texts = [paths["md"].read_text(encoding="utf-8"), visible(paths["html"].read_text(encoding="utf-8")),
             paths["json"].read_text(encoding="utf-8")]
    for text in texts:
        for word in VERDICT_WORDS:
            assert word not in text.lower()


def test_rerender_from_record(tmp_path, capsys):
    paths = write_report(example_report(), tmp_path)
    before = {k: p.read_text(encoding="utf-8") for k, p in paths.items()}
    assert rerender([str(paths["json"]), str(tmp_path / "again")]) == 0
    for key, text in before.items():
        assert (tmp_path / "again" / f"report.{key}").read_text(encoding="utf-8") == text
    (tmp_path / "bad.json").write_text('{"schema_version": "1"}', encoding="utf-8")
    assert rerender([str(tmp_path / "bad.json")]) == 2
    assert "error:" in capsys.readouterr().err
