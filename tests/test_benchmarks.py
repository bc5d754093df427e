"""The statistics' must-shows on models of known lineage (slow: run by .ci/run after the default suite).

Each runs the benchmark script itself (benchmarks/*.py) and checks its JSON, so the numbers
in benchmarks/README.md are the ones these tests see.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import ROOT, ZOO, needs_shared_data


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@needs_shared_data()
def test_mt_bench_separates_derived_from_independent_pairs(tmp_path):
    out = tmp_path / "mt_bench.json"
    assert _bench("mt_bench").main(["--resamples", "499", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    head = r["headline"]
    # measured (default batteries ngram + self_id): similarity scale, both sides 0.910 / 0.50 (the
    # leading score); rank scale, both sides 0.938 / 0.455; naive raw word-3-gram Jaccard 0.888 / 0.32
    assert head["auroc"] >= 0.90 and head["auroc"] > head["naive_word3_jaccard"]["auroc"] + 0.015, head
    assert head["naive_word3_jaccard"]["auroc"] == pytest.approx(0.886, abs=0.01)
    rank_both = next(t for t in r["separation_table"] if t["batteries"].startswith("ngram+self_id")
                     and t["score"] == "rank excess, both side")
    assert rank_both["auroc"] >= 0.93, rank_both
    # same-model re-runs rank at the top of all labelled pairs, and first among all models
    assert r["same_model"]["positions_among_labelled_pairs"] == [1, 2, 3, 4, 5]
    for rerun, v in r["same_model"]["rerun_rankings"].items():
        assert v["rank"] == 1 and v["p_first"] >= 0.99, (rerun, v)


@pytest.mark.slow
@pytest.mark.skipif(not (ZOO / "lineage.json").exists(), reason="the zoo is not built")
def test_zoo_dose_series_and_leave_one_control_out(tmp_path):
    out = tmp_path / "zoo.json"
    assert _bench("zoo").main(["--resamples", "999", "--out", str(out)]) == 0  # collects what the store lacks
    r = json.loads(out.read_text())
    head = r["headline"]
    assert head["dose_spearman"] >= 0.9, head["dose_combined"]
    loco = head["loco"]  # measured 12/12 per battery and 5/6 combined (nominal 95%; few intervals)
    held = sum(loco[p]["include_zero"] for p in ("per_battery", "combined"))
    assert held / sum(loco[p]["intervals"] for p in ("per_battery", "combined")) >= 0.85, loco
    assert head["separation_auroc"] == 1.0
