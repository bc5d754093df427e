"""Pool mode (`provenance compare`) and planning (`provenance plan`) on small real files."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from provenance.cli import main
from provenance.report import validate_report

WORDS = [f"w{i}" for i in range(300)]


def _transcripts(path, n_prompts=30, samples=2, seed=0):
    """Five models answering n_prompts prompts: a teacher, a student that reuses about half of
    the teacher's words, and three independent models."""
    g = np.random.default_rng(seed)
    lines = []
    for p in range(n_prompts):
        topic = g.choice(WORDS, 40, replace=False)
        teacher_habit = list(g.choice(topic, 12, replace=False))
        for s in range(samples):
            outs = {}
            outs["teacher"] = teacher_habit + list(g.choice(topic, 8))
            outs["student"] = list(g.choice(teacher_habit, 9)) + list(g.choice(topic, 11))
            for k in ("indep-1", "indep-2", "indep-3"):
                outs[k] = list(g.choice(topic, 20))
            for m, words in outs.items():
                lines.append(json.dumps({"model": m, "prompt_id": f"p{p}", "prompt": f"Question {p}?",
                                         "output": " ".join(words)}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_compare_ranks_the_teacher_first_and_writes_a_valid_report(tmp_path):
    f = _transcripts(tmp_path / "t.jsonl")
    out = tmp_path / "cmp"
    res = CliRunner().invoke(main, ["compare", "--transcripts", str(f), "--candidate", "student",
                                    "--control", "indep-1", "--control", "indep-2", "--battery", "transcripts:ngram",
                                    "--n-resamples", "499", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "1. teacher" in res.output
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["kind"] == "compare" and len(report["pairs"]) == 10
    top = report["rankings"][0]["entries"][0]
    assert top["reference"] == "teacher" and top["p_first"] > 0.9
    md = (out / "report.md").read_text()
    assert "Teacher rankings" in md and "teacher" in md
    html = (out / "report.html").read_text()
    assert "similarity-matrix" in html and "<script src=" not in html
    from provenance.report.__main__ import main as rerender

    assert rerender([str(out / "report.json"), str(tmp_path / "again")]) == 0


def test_compare_needs_two_models(tmp_path):
    res = CliRunner().invoke(main, ["compare", "mock/one", "--out", str(tmp_path)])
    assert res.exit_code != 0


def test_plan_from_a_pilot_audit(tmp_path):
    f = _transcripts(tmp_path / "t.jsonl", n_prompts=25, samples=2)
    pilot = tmp_path / "pilot"
    args = ["audit", "--candidate", f"transcripts/{f}#student", "--reference", f"transcripts/{f}#teacher"]
    for k in ("indep-1", "indep-2", "indep-3"):
        args += ["--control", f"transcripts/{f}#{k}"]
    res = CliRunner().invoke(main, args + ["--battery", "transcripts:ngram", "--n-resamples", "499", "--out",
                                           str(pilot), "--quiet"])
    assert res.exit_code == 0, res.output
    # at the pilot's own precision (the default target), the pilot's design is about what is needed
    res = CliRunner().invoke(main, ["plan", str(pilot), "--samples", "1,2,4"])
    assert res.exit_code == 0, res.output
    row = json.loads((pilot / "plan.json").read_text())[0]
    assert row["battery"] == "transcripts:ngram" and row["pilot_prompts"] == 25 and row["pilot_samples"] == 2
    assert row["sd_within"] is not None and row["sd_between"] is not None
    at_pilot = {o["samples"]: o["prompts_for_half_width"] for o in row["options"]}
    assert 20 <= at_pilot[2] <= 32, at_pilot
    # half the width needs more prompts (or cannot be reached when the spread between models is the floor)
    res = CliRunner().invoke(main, ["plan", str(pilot), "--half-width", str(row["pilot_half_width"] / 2),
                                    "--samples", "1,2,4"])
    assert res.exit_code == 0, res.output
    needed = [o["prompts_for_half_width"] for o in json.loads((pilot / "plan.json").read_text())[0]["options"]]
    assert all(n is None or n > 25 for n in needed), needed
    # more samples never need more prompts
    known = [n for n in needed if n is not None]
    assert known == sorted(known, reverse=True)
