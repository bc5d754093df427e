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

for the default intervals (BCa/percentile with the small-sample expansion) and for the
textbook ones (``small_sample="none"``). Run:

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
CONTROLS = ["K1", "K2", "K3"]


def specs(lam: float) -> list[SyntheticBattery]:
    return [SyntheticBattery("quirks", lam=lam, samples=4), SyntheticBattery("ngram", lam=lam, samples=2)]


def run_cell(args) -> dict:
    n, label, lam, audits, seed, n_resamples, truths = args
    warnings.simplefilter("ignore")
    rng = np.random.default_rng([seed, n, int(lam * 1000)])
    tally: dict[str, dict[str, list[int]]] = {}  # variant -> estimand -> [covered, defined, total, bca]

    def count(variant, key, est, truth):
        t = tally.setdefault(variant, {}).setdefault(key, [0, 0, 0, 0])
        t[2] += 1
        if est is None or not est.has_interval:
            return
        t[1] += 1
        t[0] += est.confidence_interval.low <= truth <= est.confidence_interval.high
        t[3] += est.method.startswith(("BCa", "expanded BCa"))

    for _ in range(audits):
        tables = synthetic_tables(specs(lam), n, n_controls=3, rng=rng)
        for variant in ("expand", "none"):
            st = audit_statistics(tables, "C", ["R"], CONTROLS, n_resamples=n_resamples, n_permutations=0,
                                  rng=rng, loo_controls=False, small_sample=variant, warn=False)
            for r in st.results:
                tv = truths[r.battery]
                for side in BASELINES:
                    count(variant, f"excess:{r.battery}:{side}", r.excesses.get(side), tv[f"excess:{side}"])
                if r.normalised is not None and math.isfinite(tv[f"normalised:{st.baseline}"]):
                    count(variant, f"normalised:{r.battery}", r.normalised, tv[f"normalised:{st.baseline}"])
            c = st.combined[0]
            truth = sum(w * truths[b][f"excess:{st.baseline}"] for b, w in c.weights.items())
            count(variant, "combined", c.excess, truth)
    return {"n_prompts": n, "truth": label, "lam": lam, "tally": tally}


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
    cells = [(n, label, lam, audits, a.seed, a.resamples, truths[label]) for n in N_PROMPTS
             for label, lam in LAMBDAS.items()]
    cells.sort(key=lambda c: -c[0])  # longest first
    with ProcessPoolExecutor(a.jobs) as ex:
        done = list(ex.map(run_cell, cells))
    done.sort(key=lambda c: (c["n_prompts"], c["truth"]))
    rows = []
    for c in done:
        for variant, est in c["tally"].items():
            for key, (cov, defined, total, bca) in est.items():
                rows.append({"n_prompts": c["n_prompts"], "truth": c["truth"], "intervals": variant, "estimand": key,
                             "coverage": cov / defined if defined else None, "defined": defined, "audits": total,
                             "bca_share": bca / defined if defined else None})
    main_keys = [f"excess:quirks:{DEFAULT_BASELINE}", f"excess:ngram:{DEFAULT_BASELINE}", "combined"]
    headline = [r for r in rows if r["intervals"] == "expand" and r["estimand"] in main_keys]
    covs = [r["coverage"] for r in headline if r["coverage"] is not None]
    result = {
        "what": "coverage of 95% intervals on synthetic audits with known true excess",
        "audits_per_cell": audits, "n_resamples": a.resamples, "seed": a.seed, "n_prompts": list(N_PROMPTS),
        "lambdas": LAMBDAS, "truths": truths, "leading_baseline": DEFAULT_BASELINE,
        "headline": {"estimands": main_keys, "min_coverage": min(covs), "max_coverage": max(covs),
                     "cells_outside_93_97": [(r["n_prompts"], r["truth"], r["estimand"], r["coverage"])
                                             for r in headline if not 0.93 <= r["coverage"] <= 0.97]},
        "rows": rows,
        "seconds": round(time.time() - start, 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
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
