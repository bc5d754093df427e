"""benchmarks/run.py: one command for every benchmark, and a summary that is never typed in.

The default suite checks that benchmarks/SUMMARY.md is exactly what ``run.py --summary-only``
makes of the committed result files; the slow check runs the whole quick mode (the CI smoke run
of every benchmark) into a scratch folder and checks what it writes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

RUN = ROOT / "benchmarks" / "run.py"
RESULTS = ROOT / "benchmarks" / "results"


def _runner():
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _run(*args, timeout=60):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(RUN), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_summary_is_generated_from_the_committed_results():
    runner = _runner()
    md, figures, files, _ = runner.summary_markdown(RESULTS, quick=False)
    committed = (ROOT / "benchmarks" / "SUMMARY.md").read_text(encoding="utf-8")
    assert md == committed, "benchmarks/SUMMARY.md differs from the result files: run python benchmarks/run.py --summary-only"
    assert figures and all(f.measured for f in figures)
    # every result file that is committed is summarised, and understood
    for b in runner.BENCHMARKS:
        if (RESULTS / b.result).exists():
            assert files[b.name]["result"] == f"benchmarks/results/{b.result}"
            assert not any(f.figure == "(result file not understood)" for f in figures if f.benchmark == b.name)


def test_summary_only_rewrites_the_same_files(tmp_path):
    for p in RESULTS.glob("*.json"):
        shutil.copy(p, tmp_path / p.name)
    r = _run("--summary-only", "--results", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "SUMMARY.md").read_text(encoding="utf-8") == \
        (ROOT / "benchmarks" / "SUMMARY.md").read_text(encoding="utf-8")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["figures"] and set(summary["targets"]) == {"met", "missed", "none"}
    assert "benchmark" in r.stdout and "met" in r.stdout  # the printed table


def test_registry_entries_are_complete():
    runner = _runner()
    names = [b.name for b in runner.BENCHMARKS]
    assert len(names) == len(set(names))
    for b in runner.BENCHMARKS:
        assert (ROOT / "benchmarks" / b.script).exists(), b.script
        assert "{out}" in b.full and (b.quick is None or "{out}" in b.quick), b.name
        assert b.quick is not None or b.why_not_quick, b.name
    r = _run("--only", "no-such-benchmark")
    assert r.returncode != 0 and "unknown benchmark" in r.stderr


@pytest.mark.slow
def test_quick_mode_runs_every_benchmark(tmp_path):
    r = _run("--quick", "--results", str(tmp_path), timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    runner = _runner()
    assert set(summary["runs"]) == {b.name for b in runner.BENCHMARKS}
    for b in runner.BENCHMARKS:
        run = summary["runs"][b.name]
        assert run["status"] in ("ok", "skipped"), (b.name, run)
        if b.quick is None:
            assert run["status"] == "skipped"
        if run["status"] == "ok":
            result = json.loads((tmp_path / b.result).read_text())
            assert b.figures(result), b.name
            assert any(f["benchmark"] == b.name for f in summary["figures"])
    assert summary["quick"] is True and summary["machine"]["cpus"]
    md = (tmp_path / "SUMMARY.md").read_text(encoding="utf-8")
    assert md.startswith("# Benchmark summary") and "Quick mode" in md
    assert "| benchmark | figure | target | measured | met |" in md
    assert "(result file not understood)" not in md
