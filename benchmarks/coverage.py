"""Coverage of the 95% intervals on synthetic audits with a known true excess.

Each synthetic audit has a candidate, a reference and three controls answering two batteries
(a categorical "quirks" battery with 4 samples per prompt and an n-gram "ngram" battery with
2 samples), see ``provenance/stats/simulate.py``. For each prompt count and true excess
(zero: the candidate is one more independent model; positive: it took half its behaviour
from the reference), ``--audits`` audits are analysed with ``audit_statistics`` exactly as a
real audit is, and we count how often each interval covers the truth:

- excess per battery (the leading baseline side, and the other two sides),
- the combined excess over both batteries (equal weights, same replicates),
- the normalised score (where reported),
- the rank-scale excess and combined rank score (zero truth: a candidate like the controls),

for the default intervals (BCa/percentile with the small-sample expansion and the spread
between models) and, at 10-50 prompts, for the textbook ones (``small_sample="none"``,
no spread). A second set of cells gives every model persistent habits of its own
(``model_effect``), as real models have: there the candidate is an independent model and we
count how often the intervals include zero, with and without the spread between models
(the leave-one-control-out situation, in simulation). Run:

    .venv/bin/python benchmarks/coverage.py            # about 15-25 minutes on 2 busy cores
    .venv/bin/python benchmarks/coverage.py --quick    # 200 audits per cell, a few minutes

Writes ``benchmarks/results/coverage.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.stats.excess import BASELINES, DEFAULT_BASELINE, audit_statistics  # noqa: E402
from provenance.stats.simulate import SyntheticBattery, synthetic_tables, true_values  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "coverage.json"
N_PROMPTS = (10, 20, 50, 100, 200, 500)
LAMBDAS = {"zero": 0.0, "positive": 0.5}
MODEL_EFFECT = 0.5  # models that differ in habits on every prompt: the leave-one-control-out setting


def specs(lam: float, model_effect: float = 0.0) -> list[SyntheticBattery]:
    return [SyntheticBattery("quirks", lam=lam, samples=4, model_effect=model_effect),
            SyntheticBattery("ngram", lam=lam, samples=2, model_effect=model_effect)]


def run_cell(args) -> dict:
    n, label, lam, audits, seed, n_resamples, truths, model_effect, k = args
    warnings.simplefilter("ignore")
    rng = np.random.default_rng([seed, n, int(lam * 1000), int(model_effect * 1000), k])
    controls = [f"K{i + 1}" for i in range(k)]
    tally: dict[str, dict[str, list[int]]] = {}  # variant -> estimand -> [covered, defined, total, bca]

    def count(variant, key, est, truth):
        t = tally.setdefault(variant, {}).setdefault(key, [0, 0, 0, 0])
        t[2] += 1
        if est is None or not est.has_interval:
            return
        t[1] += 1
        t[0] += est.confidence_interval.low <= truth <= est.confidence_interval.high
        t[3] += "BCa" in est.method

    opts = dict(n_resamples=n_resamples, n_permutations=0, loo_controls=False, warn=False)
    for _ in range(audits):
        tables = synthetic_tables(specs(lam, model_effect), n, n_controls=k, rng=rng)
        if model_effect > 0:  # calibration against models that differ: zero truth only
            for spread in (True, False):
                st = audit_statistics(tables, "C", ["R"], controls, rng=rng, models_spread=spread, all_sides=False,
                                      **opts)
                variant = "expand" if spread else "expand, no between-model spread"
                for r in st.results:
                    count(variant, f"excess:{r.battery}:{st.baseline}", r.excess, 0.0)
                    count(variant, f"rank:{r.battery}:{st.baseline}", r.rank_excess, 0.0)
                count(variant, f"combined:{st.scale}", st.combined[0].excess, 0.0)
            continue
        st = audit_statistics(tables, "C", ["R"], controls, rng=rng, scale="similarity", **opts)
        for r in st.results:
            tv = truths[r.battery]
            for side in BASELINES:
                count("expand", f"excess:{r.battery}:{side}", r.excesses.get(side), tv[f"excess:{side}"])
                if lam == 0:
                    count("expand", f"rank:{r.battery}:{side}", r.rank_excesses.get(side), 0.0)
            if r.normalised is not None and math.isfinite(tv[f"normalised:{st.baseline}"]):
                count("expand", f"normalised:{r.battery}", r.normalised, tv[f"normalised:{st.baseline}"])
        c = st.combined[0]
        count("expand", "combined:similarity", c.excess,
              sum(w * truths[b][f"excess:{st.baseline}"] for b, w in c.weights.items()))
        if lam == 0:
            st = audit_statistics(tables, "C", ["R"], controls, rng=rng, scale="rank", all_sides=False, **opts)
            count("expand", "combined:rank", st.combined[0].excess, 0.0)
        if n <= 50:  # the textbook intervals, where small samples matter
            st = audit_statistics(tables, "C", ["R"], controls, rng=rng, scale="similarity", all_sides=False,
                                  small_sample="none", models_spread=False, **opts)
            for r in st.results:
                count("none", f"excess:{r.battery}:{st.baseline}", r.excess, truths[r.battery][f"excess:{st.baseline}"])
            c = st.combined[0]
            count("none", "combined:similarity", c.excess,
                  sum(w * truths[b][f"excess:{st.baseline}"] for b, w in c.weights.items()))
    return {"n_prompts": n, "truth": label, "lam": lam, "model_effect": model_effect, "controls": k, "tally": tally}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audits", type=int, default=1000, help="synthetic audits per cell (default 1000)")
    ap.add_argument("--quick", action="store_true", help="200 audits per cell")
    ap.add_argument("--resamples", type=int, default=999)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20250601)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    audits = 200 if a.quick else a.audits
    start = time.time()
    truths = {label: {s.battery: true_values(s) for s in specs(lam)} for label, lam in LAMBDAS.items()}
    cells = [(n, label, lam, audits, a.seed, a.resamples, truths[label], 0.0, 3) for n in N_PROMPTS
             for label, lam in LAMBDAS.items()]
    cells += [(n, "zero", 0.0, max(audits // 2, 100), a.seed, a.resamples, truths["zero"], MODEL_EFFECT, k)
              for n in (20, 100) for k in (3, 8)]
    cells.sort(key=lambda c: -c[0])  # longest first
    with ProcessPoolExecutor(a.jobs) as ex:
        done = list(ex.map(run_cell, cells))
    done.sort(key=lambda c: (c["model_effect"], c["controls"], c["n_prompts"], c["truth"]))
    rows = []
    for c in done:
        for variant, est in c["tally"].items():
            for key, (cov, defined, total, bca) in est.items():
                rows.append({"n_prompts": c["n_prompts"], "truth": c["truth"], "intervals": variant, "estimand": key,
                             "model_effect": c["model_effect"], "controls": c["controls"],
                             "coverage": cov / defined if defined else None, "defined": defined, "audits": total,
                             "bca_share": bca / defined if defined else None})
    main_keys = [f"excess:quirks:{DEFAULT_BASELINE}", f"excess:ngram:{DEFAULT_BASELINE}", "combined:similarity",
                 "combined:rank", f"rank:quirks:{DEFAULT_BASELINE}", f"rank:ngram:{DEFAULT_BASELINE}"]
    headline = [r for r in rows if r["intervals"] == "expand" and r["estimand"] in main_keys
                and r["model_effect"] == 0]
    covs = [r["coverage"] for r in headline if r["coverage"] is not None]
    result = {
        "what": "coverage of 95% intervals on synthetic audits with known true excess",
        "audits_per_cell": audits, "n_resamples": a.resamples, "seed": a.seed, "n_prompts": list(N_PROMPTS),
        "lambdas": LAMBDAS, "truths": truths, "leading_baseline": DEFAULT_BASELINE, "model_effect": MODEL_EFFECT,
        "headline": {"estimands": main_keys, "min_coverage": min(covs), "max_coverage": max(covs),
                     "cells_outside_93_97": [(r["n_prompts"], r["truth"], r["estimand"], r["coverage"])
                                             for r in headline if not 0.93 <= r["coverage"] <= 0.97]},
        "rows": rows,
        "seconds": round(time.time() - start, 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table([r for r in rows if r["model_effect"] == 0]))
    print("\nmodels that differ (model_effect %.1f), zero truth: share of intervals including zero" % MODEL_EFFECT)
    for r in rows:
        if r["model_effect"] > 0:
            print(f"  n={r['n_prompts']:4d} k={r['controls']} {r['intervals']:34s} {r['estimand']:28s} "
                  f"{r['coverage']:.3f} ({r['defined']} audits)")
    print(f"headline coverage {min(covs):.3f} to {max(covs):.3f}; wrote {a.out} in {result['seconds']} s")
    return 0


def table(rows) -> str:
    keys = sorted({r["estimand"] for r in rows})
    lines = []
    for variant in ("expand", "none"):
        lines.append(f"\nintervals: {variant}")
        lines.append(f"{'estimand':28s} {'truth':9s} " + " ".join(f"n={n:<5d}" for n in N_PROMPTS))
        for key in keys:
            for truth in LAMBDAS:
                cells = {r["n_prompts"]: r for r in rows if r["intervals"] == variant and r["estimand"] == key
                         and r["truth"] == truth}
                if not cells:
                    continue
                lines.append(f"{key:28s} {truth:9s} " + " ".join(
                    f"{cells[n]['coverage']:.3f} " if n in cells and cells[n]["coverage"] is not None else "  -    "
                    for n in N_PROMPTS))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
