"""The statistics on the lineage zoo: leave-one-control-out, the dose series, known students.

Collects every zoo model's answers to the shipped batteries (self_id, quirks, ngram) into a
store (``benchmarks/results/tmp/zoo-store.sqlite``, reused on later runs), then, from the store:

1. Leave-one-control-out: each control in turn is the candidate, the other two are its
   controls, against teacher-a and teacher-b. None of them learned from either teacher, so
   their excess intervals should include zero at the nominal rate (95%).
2. Dose series: dose-000, -010, -025, -050, -100 (0 to 100% of a persona's training data
   replaced by teacher A's sampled answers) against teacher-a with the three controls. The
   combined score should rise with the dose (Spearman across the five doses).
3. Known students against their teacher (seqkd-a, kd-a, scrubbed-a vs teacher-a; seqkd-b vs
   teacher-b) beside null pairs (each student against the other teacher; controls as
   candidates): how far apart the combined scores are (AUROC on the zoo).

Each is computed for every baseline side and both scales, so the choice of the leading one
rests on measurement. Run: ``.venv/bin/python benchmarks/zoo.py`` (collection takes minutes
the first time). Writes ``benchmarks/results/zoo.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.compare import load_pool  # noqa: E402
from provenance.stats.excess import BASELINES, DEFAULT_BASELINE, DEFAULT_SCALE, SCALES, audit_statistics  # noqa: E402
from provenance.stats.pool import auroc, pool_statistics  # noqa: E402

ZOO = ROOT / "fixtures" / "zoo" / "models"
OUT = ROOT / "benchmarks" / "results" / "zoo.json"
STORE = ROOT / "benchmarks" / "results" / "tmp" / "zoo-store.sqlite"
BATTERIES = ["self_id", "quirks", "ngram"]
CONTROLS = ["control-1", "control-2", "control-3"]
TEACHERS = ["teacher-a", "teacher-b"]
DOSES = ["dose-000", "dose-010", "dose-025", "dose-050", "dose-100"]
DOSE_VALUES = [0.0, 0.10, 0.25, 0.50, 1.0]
STUDENTS = {"seqkd-a": "teacher-a", "kd-a": "teacher-a", "scrubbed-a": "teacher-a", "seqkd-b": "teacher-b"}


def variants():
    return [(sc, side) for sc in SCALES for side in BASELINES]


def run(tables, cand, refs, controls, seed, B, scale, baseline, loo=False):
    return audit_statistics(tables, cand, refs, controls, baseline=baseline, scale=scale, n_resamples=B,
                            n_permutations=0, rng=seed, loo_controls=loo, warn=False)


def includes_zero(e) -> bool | None:
    if e is None or not e.has_interval:
        return None
    return bool(e.confidence_interval.low <= 0 <= e.confidence_interval.high)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=1999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", type=Path, default=STORE)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-collect", action="store_true", help="analyse the store as it is, asking no model")
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke run: the first 12 English prompts of each battery, 2 samples, 199 resamples")
    a = ap.parse_args(argv)
    start = time.time()
    names = sorted(p.name for p in ZOO.iterdir() if (p / "config.json").exists())
    missing = [m for m in [*CONTROLS, *TEACHERS, *DOSES, *STUDENTS] if m not in names]
    if missing:
        print(f"zoo models missing: {', '.join(missing)}; build the zoo first (fixtures/zoo/build.py)")
        return 2
    a.store.parent.mkdir(parents=True, exist_ok=True)
    models = {m: f"hf/{ZOO / m}" for m in names}
    bats, samples = BATTERIES, None
    if a.quick:
        from provenance.battery import resolve_batteries

        bats = [f"{b.name}[id={'|'.join(p.id for p in b.prompts[:12])}]"
                for b in resolve_batteries([f"{x}[language=en]" for x in BATTERIES])]
        samples, a.resamples = 2, min(a.resamples, 199)
    _, _, datas = load_pool(models, bats, a.store, seed=a.seed, samples=samples, progress=True,
                            collect_missing=not a.no_collect)
    print(f"collected in {time.time() - start:.0f} s", flush=True)
    warnings.simplefilter("ignore")
    tables = [d.table() for d in datas]
    B = a.resamples

    # 1. leave-one-control-out
    loco = {f"{sc}:{side}": [] for sc, side in variants()}
    for k in CONTROLS:
        others = [c for c in CONTROLS if c != k]
        for sc, side in variants():
            st = run(tables, k, TEACHERS, others, a.seed, B, sc, side)
            for r in st.results:
                e = r.excess if sc == "similarity" else r.rank_excess
                loco[f"{sc}:{side}"].append({"candidate": k, "reference": r.reference, "battery": r.battery,
                                             "estimate": e.estimate, "ci": list(e.confidence_interval),
                                             "includes_zero": includes_zero(e)})
            for c in st.combined:
                loco[f"{sc}:{side}"].append({"candidate": k, "reference": c.reference, "battery": "combined",
                                             "estimate": c.excess.estimate, "ci": list(c.excess.confidence_interval),
                                             "includes_zero": includes_zero(c.excess)})
    # the same with intervals from prompt resampling alone (no spread between models)
    for sc, side in variants():
        rows = []
        for k in CONTROLS:
            st = audit_statistics(tables, k, TEACHERS, [c for c in CONTROLS if c != k], baseline=side, scale=sc,
                                  n_resamples=B, n_permutations=0, rng=a.seed, loo_controls=False, warn=False,
                                  models_spread=False)
            rows += [{"battery": r.battery, "includes_zero": includes_zero(r.excess if sc == "similarity"
                                                                          else r.rank_excess)} for r in st.results]
            rows += [{"battery": "combined", "includes_zero": includes_zero(c.excess)} for c in st.combined]
        loco[f"{sc}:{side}, prompts only"] = rows
    loco_summary = {}
    for key, rows in loco.items():
        def rate(rs):
            v = [r["includes_zero"] for r in rs if r["includes_zero"] is not None]
            return {"include_zero": sum(v), "intervals": len(v), "rate": sum(v) / len(v) if v else None}
        loco_summary[key] = {"per_battery": rate([r for r in rows if r["battery"] != "combined"]),
                             "combined": rate([r for r in rows if r["battery"] == "combined"])}

    # 2. dose series
    dose = {}
    for sc, side in variants():
        vals = []
        for d in DOSES:
            st = run(tables, d, ["teacher-a"], CONTROLS, a.seed, B, sc, side)
            c = st.combined[0].excess
            vals.append({"model": d, "estimate": c.estimate, "ci": list(c.confidence_interval),
                         "per_battery": {r.battery: (r.excess if sc == "similarity" else r.rank_excess).estimate
                                         for r in st.results}})
        rho = spearmanr(DOSE_VALUES, [v["estimate"] for v in vals]).statistic
        dose[f"{sc}:{side}"] = {"spearman": float(rho), "doses": vals}

    # 3. known students against null pairs
    pairs = [(s, t, "derived") for s, t in STUDENTS.items()]
    pairs += [(s, "teacher-b" if t == "teacher-a" else "teacher-a", "null") for s, t in STUDENTS.items()]
    pairs += [(k, t, "null") for k in CONTROLS for t in TEACHERS]
    separation = {}
    for sc, side in variants():
        rows = []
        for cand, ref, label in pairs:
            ctl = [c for c in CONTROLS if c != cand]
            st = run(tables, cand, [ref], ctl, a.seed, B, sc, side)
            rows.append({"candidate": cand, "reference": ref, "label": label,
                         "estimate": st.combined[0].excess.estimate,
                         "ci": list(st.combined[0].excess.confidence_interval)})
        pos = [r["estimate"] for r in rows if r["label"] == "derived"]
        neg = [r["estimate"] for r in rows if r["label"] == "null"]
        separation[f"{sc}:{side}"] = {"auroc": auroc(pos, neg), "min_derived": min(pos), "max_null": max(neg),
                                      "pairs": rows}

    # pool mode over the zoo: who ranks first as teacher of each student
    pool = pool_statistics(tables, names, candidates=list(STUDENTS) + DOSES[1:], controls=CONTROLS,
                           n_resamples=B, rng=a.seed)
    rankings = {r.candidate: [(e.reference, round(e.score.estimate, 4), e.p_first) for e in r.entries[:3]]
                for r in pool.rankings}

    head = f"{DEFAULT_SCALE}:{DEFAULT_BASELINE}"
    result = {
        "what": "zoo: leave-one-control-out, dose series, known students vs null pairs",
        "models": names, "n_prompts": {d.battery.name: len(d.prompt_ids) for d in datas},
        "n_resamples": B, "seed": a.seed, "quick": a.quick, "leading": {"baseline": DEFAULT_BASELINE, "scale": DEFAULT_SCALE},
        "headline": {"loco": loco_summary[head], "dose_spearman": dose[head]["spearman"],
                     "dose_combined": [(v["model"], round(v["estimate"], 4)) for v in dose[head]["doses"]],
                     "separation_auroc": separation[head]["auroc"]},
        "loco_summary": loco_summary, "dose": dose, "separation": separation, "loco": loco,
        "pool_rankings": rankings, "seconds": round(time.time() - start, 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'variant':22s} {'LOCO incl. 0 (battery)':24s} {'LOCO incl. 0 (comb.)':22s} {'dose rho':9s} zoo AUROC")
    for sc, side in variants():
        k = f"{sc}:{side}"
        pb, cb = loco_summary[k]["per_battery"], loco_summary[k]["combined"]
        print(f"{k:22s} {pb['include_zero']:>3d}/{pb['intervals']:<20d} {cb['include_zero']:>3d}/{cb['intervals']:<18d} "
              f"{dose[k]['spearman']:8.3f}  {separation[k]['auroc']:.3f}")
    print("dose series (leading):", result["headline"]["dose_combined"])
    for c, top in rankings.items():
        print(f"  {c}: {top}")
    print(f"wrote {a.out} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
