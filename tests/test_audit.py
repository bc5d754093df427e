"""`provenance audit` end to end on the zoo's real models and on real transcripts."""

from __future__ import annotations

import json

import pytest

from conftest import MT_BENCH, needs_shared_data, zoo_model
from provenance.audit import make_spec, run_audit
from provenance.models.hf import HFModel


def _rows(report, battery=None, reference=None):
    return [r for r in report["results"] if (battery is None or r["battery"] == battery)
            and (reference is None or r["reference"] == reference)]


def _includes_zero_or_below(est: dict) -> bool:
    """An interval that includes zero or lies below it; a degenerate row (no variation at all,
    NaN interval) counts when its estimate is zero."""
    if est["ci_low"] is None:
        return est["estimate"] is not None and abs(est["estimate"]) < 1e-12
    return est["ci_low"] <= 0


def test_student_stands_out_against_its_teacher(zoo_audit):
    _, _, report = zoo_audit
    above = [r["battery"] for r in _rows(report, reference="teacher-a")
             if r["excess"]["ci_low"] is not None and r["excess"]["ci_low"] > 0]
    assert len(above) >= 2, [(r["battery"], r["excess"]) for r in _rows(report, reference="teacher-a")]


def test_control_rows_include_zero(zoo_audit):
    _, _, report = zoo_audit
    rows = [(r["battery"], c["control"], c["excess"]) for r in _rows(report, reference="teacher-a") for c in r["controls"]]
    outside = [row for row in rows if not _includes_zero_or_below(row[2])]
    assert len(outside) <= 1, outside


def test_report_files_and_record(zoo_audit):
    spec, out, report = zoo_audit
    for name in ("report.json", "report.md", "report.html", "store.sqlite", "audit.json"):
        assert (out / name).exists(), name
    data = json.loads((out / "report.json").read_text())
    assert data["audit"]["candidate"] == "seqkd-a"
    assert {b["name"] for b in data["batteries"]} == {"self_id", "quirks", "ngram"}
    assert all(len(b["content_hash"]) == 64 for b in data["batteries"])
    assert all(m["identity"]["weights_sha256"] for m in data["models"])
    assert data["statistics"]["seed"] == 0 and data["tool"]["version"]
    for r in data["results"]:
        assert r["n_prompts"] >= 30
        assert r["excess"]["method"] and r["excess"]["n_resamples"] == 1999
    assert data["evidence"] and all(len(e["responses"][0]["content_hash"]) == 64 for e in data["evidence"])


def test_rerun_asks_nothing_and_writes_same_numbers(zoo_audit, monkeypatch):
    spec, out, first = zoo_audit
    calls = []
    original = HFModel.generate

    def counting(self, requests, sampling):
        calls.append(len(requests))
        return original(self, requests, sampling)

    monkeypatch.setattr(HFModel, "generate", counting)
    second = run_audit(spec, out, progress=False)
    assert calls == []
    assert second["collection"]["requests"] == 0 and second["collection"]["cached"] > 0
    assert second["results"] == first["results"]


def test_interrupted_audit_resumes_without_repeats(tmp_path, monkeypatch):
    spec = make_spec({"candidate": zoo_model("seqkd-b"), "references": [zoo_model("teacher-b")],
                      "controls": [zoo_model("control-1")], "batteries": ["quirks"], "samples": 2,
                      "n_resamples": 199})
    asked: list[tuple[str, str, int]] = []
    original = HFModel.generate
    budget = {"left": 3}

    def flaky(self, requests, sampling):
        if budget["left"] == 0:
            raise KeyboardInterrupt
        budget["left"] -= 1
        asked.extend((self.path.name, r.prompt_id, r.sample) for r in requests)
        return original(self, requests, sampling)

    monkeypatch.setattr(HFModel, "generate", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_audit(spec, tmp_path, progress=False)
    first = len(asked)
    assert first > 0
    budget["left"] = 10_000
    report = run_audit(spec, tmp_path, progress=False)
    assert len(asked) == len(set(asked)), "a question was asked twice"
    assert report["collection"]["cached"] == first
    assert all(r["n_prompts"] > 0 for r in report["results"])


@needs_shared_data()
def test_audit_over_real_transcripts(tmp_path):
    f = f"transcripts/{MT_BENCH}"
    spec = make_spec({"candidate": f + "#vicuna-13b-v1.3", "references": [f + "#gpt-3.5-turbo"],
                      "controls": [f + "#claude-v1", f + "#palm-2-chat-bison-001", f + "#llama-13b"],
                      "batteries": ["transcripts:ngram", "transcripts:self_id"], "n_resamples": 999})
    report = run_audit(spec, tmp_path, progress=False)
    ngram = _rows(report, battery="transcripts:ngram")[0]
    assert ngram["n_prompts"] == 160
    assert ngram["excess"]["estimate"] > 0
    assert any("transcripts" in c for c in report["caveats"])
    assert (tmp_path / "report.html").exists()
