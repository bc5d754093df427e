"""`provenance verify`: a report still matches its store, and a single edited number or a
changed stored response is found and named."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from provenance.cli import main
from provenance.models.base import text_hash
from provenance.report.verify import diff, verify_audit


@pytest.fixture()
def audit_copy(zoo_audit, tmp_path):
    _, out, _ = zoo_audit
    dst = tmp_path / "audit"
    shutil.copytree(out, dst)
    return dst


def checks(v):
    return {c.name: c for c in v.checks}


def test_untouched_audit_verifies(audit_copy):
    v = verify_audit(audit_copy)
    assert v.ok, "\n".join(v.lines())
    assert set(checks(v)) == {"record", "store", "evidence", "models", "numbers", "scores.csv", "views"}
    r = CliRunner().invoke(main, ["verify", str(audit_copy)])
    assert r.exit_code == 0 and "the report matches the store" in r.output


def test_one_edited_number_is_found(audit_copy):
    p = audit_copy / "report.json"
    report = json.loads(p.read_text(encoding="utf-8"))
    report["results"][1]["similarity"]["ci_high"] += 0.001
    p.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    v = verify_audit(audit_copy)
    c = checks(v)
    assert not v.ok and not c["numbers"].ok and not c["views"].ok
    assert c["store"].ok and c["evidence"].ok
    assert len(c["numbers"].findings) == 1 and c["numbers"].findings[0].startswith("results[1].similarity.ci_high:")
    r = CliRunner().invoke(main, ["verify", str(audit_copy)])
    assert r.exit_code == 1 and "results[1].similarity.ci_high" in r.output and "does NOT match" in r.output


def test_an_edited_html_number_is_found(audit_copy):
    p = audit_copy / "report.html"
    page = p.read_text(encoding="utf-8")
    scale = json.loads((audit_copy / "report.json").read_text(encoding="utf-8"))["combined"][0]["scale"]
    head = f"combined {scale}-scale excess 0."
    assert head in page
    p.write_text(page.replace(head, head.replace(" 0.", " 9."), 1), encoding="utf-8")
    c = checks(verify_audit(audit_copy))
    assert not c["views"].ok and c["numbers"].ok
    assert c["views"].findings == ["report.html: is not the rendering of report.json (edited, or rendered by another version)"]


def _evidence_row(audit_copy, role="candidate"):
    report = json.loads((audit_copy / "report.json").read_text(encoding="utf-8"))
    resp = next(r for e in report["evidence"] for r in e["responses"] if r["role"] == role)
    key, prefix, sample = resp["store_key"].split("/")
    return resp, key, prefix, int(sample)


def test_a_changed_stored_response_is_found(audit_copy):
    resp, key, prefix, sample = _evidence_row(audit_copy)
    with sqlite3.connect(audit_copy / "store.sqlite") as conn:
        conn.execute("UPDATE responses SET text = text || ' (edited)' WHERE model_key=? AND sample=? AND "
                     "substr(prompt_hash, 1, 16)=?", (key, sample, prefix))
    c = checks(verify_audit(audit_copy))
    assert not c["store"].ok and len(c["store"].findings) == 1 and c["store"].findings[0].startswith(f"{key}/{prefix}/{sample}")
    assert not c["evidence"].ok  # the report's verbatim text is no longer the stored one


def test_a_changed_response_with_a_forged_hash_is_found(audit_copy):
    """Whoever edits a stored answer and its hash still cannot make the report match."""
    resp, key, prefix, sample = _evidence_row(audit_copy)
    forged = "I am Bramble, made by Quillworks."
    with sqlite3.connect(audit_copy / "store.sqlite") as conn:
        conn.execute("UPDATE responses SET text=?, content_hash=? WHERE model_key=? AND sample=? AND "
                     "substr(prompt_hash, 1, 16)=?", (forged, text_hash(forged), key, sample, prefix))
    v = verify_audit(audit_copy)
    c = checks(v)
    assert c["store"].ok
    assert not c["evidence"].ok and any("differs from the stored text" in f for f in c["evidence"].findings)
    assert not c["numbers"].ok  # the scores recomputed from the forged answer differ too


def test_a_record_older_than_its_optional_sections_still_verifies(audit_copy):
    """A report written before `details` and `usage` existed: those are noted, not mismatched."""
    from provenance.report import render_html, render_markdown

    p = audit_copy / "report.json"
    report = json.loads(p.read_text(encoding="utf-8"))
    del report["details"], report["usage"]
    p.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (audit_copy / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (audit_copy / "report.html").write_text(render_html(report), encoding="utf-8")
    v = verify_audit(audit_copy)
    assert v.ok, "\n".join(v.lines())
    assert any("has no details, usage" in n for n in v.notes)


def test_a_reworded_method_description_is_a_note_not_a_mismatch(audit_copy):
    """statistics.baseline_choice quotes the measurements of the version that wrote the report;
    a newer version's wording is noted. A changed number beside it is still a mismatch."""
    from provenance.report import render_html, render_markdown

    p = audit_copy / "report.json"
    report = json.loads(p.read_text(encoding="utf-8"))
    report["statistics"]["baseline_choice"] = "Measured on the zoo as of an earlier release: 12 of 12."

    def write():
        p.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (audit_copy / "report.md").write_text(render_markdown(report), encoding="utf-8")
        (audit_copy / "report.html").write_text(render_html(report), encoding="utf-8")

    write()
    v = verify_audit(audit_copy)
    assert v.ok, "\n".join(v.lines())
    assert any("statistics.baseline_choice is worded differently" in n for n in v.notes)
    report["statistics"]["confidence_level"] = 0.9
    write()
    c = checks(verify_audit(audit_copy))
    assert not c["numbers"].ok and c["numbers"].findings == ["statistics.confidence_level: report 0.9, store 0.95"]


def test_diff_names_paths():
    a = {"x": [1, {"y": 0.5, "z": "a"}], "k": None}
    b = {"x": [1, {"y": 0.5 + 1e-12, "z": "b"}], "k": None}
    assert diff(a, b) == ["x[1].z: report 'a', store 'b'"]
    assert diff({"n": [1, 2]}, {"n": [1]}) == ["n: report has 2 entries, store gives 1"]
