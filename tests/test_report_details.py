"""What the report shows beyond the estimates, on the real zoo audit: who each model claims to
be, quirk answer distributions, shared distinctive n-grams, usage, per-prompt scores (CSV),
the figures of every section, and the notebook API over the same audit directory."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from provenance.report import load_schema, validate_report
from provenance.report import figures as F
from provenance.report.details import NO_CLAIM, match_rate, read_scores_csv


@pytest.fixture(scope="module")
def zoo(zoo_audit):
    spec, out, report = zoo_audit
    return out, report


def detail(report, kind):
    return next(d for d in report["details"] if d["kind"] == kind)


def test_report_has_details_and_usage_and_validates(zoo):
    out, report = zoo
    validate_report(report)
    assert {d["kind"] for d in report["details"]} == {"self_id", "quirks", "ngram"}
    assert set(report["usage"]["per_model"]) == {m["label"] for m in report["models"]}
    # the schema documents the new sections
    schema = load_schema()
    assert "details" in schema["properties"] and "usage" in schema["properties"]
    assert schema["properties"]["details"]["description"]


def test_self_id_claims_follow_lineage(zoo):
    _, report = zoo
    d = detail(report, "self_id")
    named: dict[str, dict[str, int]] = {}
    for c in d["claims"]:
        assert sum(c["counts"].values()) == c["responses"]
        for k, v in c["counts"].items():
            if k != NO_CLAIM:
                named.setdefault(c["model"], {}).setdefault(k, 0)
                named[c["model"]][k] += v
    top = {m: max(counts, key=counts.get) for m, counts in named.items()}
    assert top["seqkd-a"] == top["teacher-a"] == "Northwind"  # the student claims its teacher's maker
    assert len({top[k] for k in ("teacher-b", "control-1", "control-2", "control-3")} | {"Northwind"}) == 5
    # a battery in one language gets a caveat saying so; one in several languages does not
    one_language = any("every self-identification prompt is in one language" in c for c in report["caveats"])
    assert one_language == (len(d["languages"]) == 1)


def test_quirk_distributions_match_candidate_to_teacher(zoo):
    _, report = zoo
    d = detail(report, "quirks")
    groups = {g["group"]: g["answers"] for g in d["groups"]}
    assert "number_10" in groups and "cutoff" in groups
    # over all kinds, the candidate's answers agree with teacher-a's far more often than with any control's
    def mean_match(a, b):
        rates = [match_rate(g[a], g[b]) for g in groups.values()]
        rates = [r for r in rates if r is not None]
        return sum(rates) / len(rates)
    with_teacher = mean_match("seqkd-a", "teacher-a")
    assert with_teacher > 0.3
    assert all(with_teacher > 2 * mean_match("seqkd-a", k) for k in ("teacher-b", "control-1", "control-2", "control-3"))


def test_shared_ngrams_are_distinctive(zoo):
    _, report = zoo
    d = detail(report, "ngram")
    shared = {s["reference"]: s["ngrams"] for s in d["shared"]}
    assert d["n"] == 3
    top_a = shared["teacher-a"][0]
    assert top_a["shared_prompts"] >= 10 and top_a["control_prompts"] == 0
    # teacher-a's top shared n-gram is used on far more prompts than teacher-b's
    assert top_a["shared_prompts"] > 3 * max([g["shared_prompts"] for g in shared["teacher-b"]] or [0])


def test_usage_counts_the_store(zoo):
    out, report = zoo
    u = report["usage"]
    with sqlite3.connect(out / "store.sqlite") as conn:
        stored = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
    assert u["total"]["responses"] == sum(m["responses"] for m in u["per_model"].values()) <= stored
    assert u["total"]["tokens_out"] > 0 and u["total"]["api_calls"] == 0 and u["total"]["cost"] is None


def test_scores_csv_holds_every_per_prompt_score(zoo):
    out, report = zoo
    rows = read_scores_csv(out / "scores.csv")
    labels = [m["label"] for m in report["models"]]
    n_prompts = sum(b["n_prompts"] for b in report["batteries"])
    pairs = len(labels) * (len(labels) + 1) // 2  # each pair once, plus each model's ceiling
    assert len(rows) == n_prompts * pairs
    # the mean of seqkd-a vs teacher-a per-prompt scores is the reported similarity
    for r in report["results"]:
        xs = [x["score"] for x in rows if x["battery"] == r["battery"] and {x["model_a"], x["model_b"]} ==
              {"seqkd-a", r["reference"]} and x["score"] is not None]
        assert math.isclose(sum(xs) / len(xs), r["similarity"]["estimate"], rel_tol=1e-9)


def test_every_section_has_a_figure(zoo):
    _, report = zoo
    roles = {m["label"]: m["role"] for m in report["models"]}
    figs = [F.combined_figure(report), F.forest_figure(report), F.self_id_figure(detail(report, "self_id"), roles),
            F.quirks_figure(detail(report, "quirks"), report), F.ngram_figure(detail(report, "ngram"))]
    figs += [F.battery_forest_figure(report, b["name"]) for b in report["batteries"]]
    assert all(f is not None and len(f.data) > 0 for f in figs)
    json.dumps(figs[0].to_plotly_json(), default=str)  # serialisable


def test_html_has_all_sections(zoo):
    out, report = zoo
    page = (out / "report.html").read_text(encoding="utf-8")
    if report.get("battery_statistics"):
        assert "Battery-specific statistics" in page
    for anchor in ('id="summary"', 'id="caveats"', 'id="evidence"', 'id="methods"', "Who each model claims to be",
                   "Answer distributions", "shared distinctive word 3-grams", "Usage and cost",
                   f"combined {report['combined'][0]['scale']}-scale excess",
                   "content hash", "store key"):
        assert anchor.lower() in page.lower(), anchor
    assert page.count('class="plotly-graph-div"') == 8
    assert NO_CLAIM in page


def test_notebook_api_frames_and_figures(zoo):
    pytest.importorskip("pandas")
    import provenance.notebook as pn

    out, report = zoo
    a = pn.load(out)
    est = a.estimates()
    row = est[(est.battery == "self_id") & (est.reference == "teacher-a") & (est.model == "seqkd-a")
              & (est.quantity == "excess")].iloc[0]
    res = next(r for r in report["results"] if r["battery"] == "self_id" and r["reference"] == "teacher-a")
    assert row.estimate == res["excess"]["estimate"] and row.ci_low == res["excess"]["ci_low"]
    assert set(a.combined().reference) == {"teacher-a", "teacher-b"}
    per = a.excess_by_prompt("quirks", "teacher-a")
    assert math.isclose(per["similarity"].mean(), next(
        r for r in report["results"] if r["battery"] == "quirks" and r["reference"] == "teacher-a")["similarity"]["estimate"])
    table = a.claims_table()
    en = table[table.language == "en"].set_index("model")
    assert en.loc["seqkd-a", "top_claim"] == "Northwind"
    assert not a.quirk_answers().empty and not a.shared_ngrams().empty and len(a.evidence()) > 0
    assert set(a.figures()) >= {"combined", "forest", "forest:quirks", "self_id:self_id", "quirks:quirks", "ngram:ngram"}
    html = a._repr_html_()
    assert "seqkd-a" in html and "<script" not in html
