"""Detection quality on the lineage zoo: derived against independent pairs, power, scrubbing.

Reads who learned from whom in ``fixtures/zoo/lineage.json`` and analyses, from the zoo's
store of answers (``benchmarks/results/tmp/zoo-store.sqlite``, shared with ``zoo.py``;
collected first where answers are missing, as ``zoo.py`` does):

The batteries are those of the shipped zoo audit (``fixtures/audits/zoo.toml``): the English
self-ID prompts, every quirk trigger, the explanation and advice n-gram prompts.

1. **Derived against independent pairs.** Every zoo model is audited as the candidate against
   each teacher (the references an investigator would hold), with controls 1-3 (less the
   candidate itself). A pair is *derived* when the teacher is among the candidate's parents
   in lineage.json, *independent* when the two share no lineage (a re-seeded copy of a
   teacher's recipe is neither and is left out). For each battery alone and for the combined
   score: AUROC and TPR at 1% FPR of the excess (the leading baseline and scale), beside the
   raw similarity with no baseline.
2. **Power curve.** ``seqkd-a`` against ``teacher-a`` with the three controls: the share of
   audits whose excess interval lies above zero, when an audit has only n prompts per battery
   (random subsets without replacement of the stored prompts, ``--draws`` per point) and s
   samples per prompt (the first s stored samples), for the combined score and each battery.
3. **Scrubbed student.** ``scrubbed-a`` (teacher A's answers with A's name replaced) against
   ``teacher-a``: the combined excess and its interval with the self-ID battery and without it.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/zoo_detection.py`` (a few minutes from the
stored answers; the first run collects them, an hour on 2 busy cores). ``--quick`` (CI): 12 English
prompts per battery, 2 samples, a store of its own, few draws and resamples. Writes
``benchmarks/results/zoo_detection.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.analysis import BatteryData  # noqa: E402
from provenance.battery import resolve_batteries  # noqa: E402
from provenance.compare import load_pool  # noqa: E402
from provenance.stats.excess import DEFAULT_BASELINE, DEFAULT_SCALE, ScoreTable, audit_statistics  # noqa: E402
from provenance.stats.pool import auroc, tpr_at_fpr  # noqa: E402

ZOO = ROOT / "fixtures" / "zoo"
OUT = ROOT / "benchmarks" / "results" / "zoo_detection.json"
STORE = ROOT / "benchmarks" / "results" / "tmp" / "zoo-store.sqlite"
#: the black-box batteries as the shipped zoo audit asks them (fixtures/audits/zoo.toml): the zoo's
#: models are English-only and were trained to explain and advise (the white-box battery, which
#: needs the weights, is measured per candidate by batteries_zoo.py)
BATTERIES = ["self_id[language=en]", "quirks", "ngram[area=explanation|advice]"]
CONTROLS = ["control-1", "control-2", "control-3"]
POWER = ("seqkd-a", "teacher-a")
SCRUBBED = ("scrubbed-a", "teacher-a")


def lineage_pairs(lineage: dict, names: list[str]) -> list[tuple[str, str, str]]:
    """(candidate, reference, label) for every zoo model against every teacher."""
    models = lineage["models"]
    out = []
    for ref in lineage["roles"]["teachers"]:
        for cand in names:
            if cand == ref:
                continue
            m = models.get(cand, {})
            if ref in m.get("parents", []):
                out.append((cand, ref, "derived"))
            elif m.get("same_recipe_as") == ref or ref in models.get(ref, {}).get("parents", []):
                continue  # a re-seeded copy of the teacher's own recipe: neither derived nor independent
            elif cand in models.get(ref, {}).get("parents", []):
                continue
            else:
                out.append((cand, ref, "independent"))
    return out


def first_samples(d: BatteryData, s: int, models: list[str]) -> BatteryData:
    feats = {m: [f[:s] for f in d.features[m]] for m in models}
    resp = {m: [r[:s] for r in d.responses[m]] for m in models}
    return BatteryData(d.battery, d.prompt_ids, feats, resp, {})


def sub_table(name: str, keys: np.ndarray, arrays: dict, idx: np.ndarray) -> ScoreTable:
    return ScoreTable(name, keys[idx], pairs={p: v[idx] for p, v in arrays.items()})


def above_zero(e) -> bool:
    return bool(e is not None and e.has_interval and e.confidence_interval.low > 0)


def power_curves(datas: list[BatteryData], n_grid: list[int], sample_grid: list[int], draws: int, B: int,
                 seed: int) -> dict:
    cand, ref = POWER
    models = [cand, ref, *CONTROLS]
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    k_of = {d.battery.name: d.battery.generation.samples for d in datas}
    per_s = {}
    for s in sample_grid:
        per_s[s] = {}
        for d in datas:
            t = first_samples(d, min(s, k_of[d.battery.name]), models).table()
            per_s[s][d.battery.name] = (np.array(t.prompt_keys), {p: t.s(*p) for p in pairs})
    gen = np.random.default_rng(seed)
    curves = []
    for s in sample_grid:
        points = {name: [] for name in ["combined", *k_of]}
        for n in n_grid:
            hits = {name: 0 for name in points}
            used = {}
            for _ in range(draws):
                tables = []
                for name, (keys, arrays) in per_s[s].items():
                    m = min(n, len(keys))
                    used[name] = m
                    tables.append(sub_table(name, keys, arrays, np.sort(gen.choice(len(keys), m, replace=False))))
                st = audit_statistics(tables, cand, [ref], CONTROLS, n_resamples=B, n_permutations=0,
                                      rng=int(gen.integers(2 ** 31)), loo_controls=False, all_sides=False, warn=False)
                hits["combined"] += above_zero(st.combined[0].excess)
                for r in st.results:
                    hits[r.battery] += above_zero(r.excess)
            for name in points:
                points[name].append({"n_prompts": n, "prompts_used": used if name == "combined" else used[name],
                                     "power": hits[name] / draws})
            print(f"  power s={s} n={n}: " + ", ".join(f"{k} {v / draws:.2f}" for k, v in hits.items()), flush=True)
        for name, pts in points.items():
            reach = next((p["n_prompts"] for p in pts if p["power"] >= 0.8), None)
            curves.append({"batteries": name, "samples": s,
                           "samples_used": {b: min(s, k) for b, k in k_of.items()} if name == "combined"
                           else min(s, k_of[name]), "points": pts, "n_for_power_0.8": reach})
    return {"candidate": cand, "reference": ref, "controls": CONTROLS, "draws": draws, "n_resamples": B,
            "prompts_available": {d.battery.name: len(d.prompt_ids) for d in datas},
            "samples_available": k_of, "subsets": "prompts drawn without replacement from the stored prompts; "
            "where n exceeds a battery's prompts, all of them are used (prompts_used)", "curves": curves}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=1999)
    ap.add_argument("--power-resamples", type=int, default=999, help="resamples per power-curve audit")
    ap.add_argument("--draws", type=int, default=200, help="prompt subsets per power-curve point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", type=Path, default=STORE)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--quick", action="store_true", help="CI: 12 English prompts per battery, 2 samples, few draws")
    ap.add_argument("--no-collect", action="store_true", help="analyse the store as it is, asking no model")
    a = ap.parse_args(argv)
    start = time.time()
    lineage_path = ZOO / "lineage.json"
    if not lineage_path.exists():
        print(f"{lineage_path} not found: build the zoo first (fixtures/zoo/build.py)")
        return 2
    lineage = json.loads(lineage_path.read_text())
    names = sorted(p.name for p in (ZOO / "models").iterdir() if (p / "config.json").exists())
    missing = [m for m in [*CONTROLS, *POWER, *SCRUBBED, *lineage["roles"]["teachers"]] if m not in names]
    if missing:
        print(f"zoo models missing: {', '.join(missing)}; build the zoo first (fixtures/zoo/build.py)")
        return 2
    bats, samples = BATTERIES, None
    B, PB, draws = a.resamples, a.power_resamples, a.draws
    n_grid, sample_grid = [5, 10, 20, 40, 80, 160], None
    if a.quick:
        bats = []
        for b in resolve_batteries([x if "[" in x else f"{x}[language=en]" for x in BATTERIES]):
            ids = [p.id for p in b.prompts][:12]
            bats.append(f"{b.name}[id={'|'.join(ids)}]")
        samples, B, PB, draws, n_grid = 2, 199, 99, 10, [5, 10]
    models = {m: f"hf/{ZOO / 'models' / m}" for m in names}
    a.store.parent.mkdir(parents=True, exist_ok=True)
    _, batteries, datas = load_pool(models, bats, a.store, seed=a.seed, samples=samples, progress=True,
                                    collect_missing=not a.no_collect)
    collected = time.time() - start
    print(f"answers ready in {collected:.0f} s", flush=True)
    warnings.simplefilter("ignore")
    tables = [d.table() for d in datas]
    bnames = [t.battery for t in tables]
    k_max = max(samples or d.battery.generation.samples for d in datas)
    sample_grid = sorted({1, 2, k_max}) if not a.quick else [1, 2]

    # 1. derived against independent pairs
    pairs = lineage_pairs(lineage, names)
    rows = []
    for cand, ref, label in pairs:
        ctl = [c for c in CONTROLS if c != cand]
        st = audit_statistics(tables, cand, [ref], ctl, n_resamples=B, n_permutations=0, rng=a.seed,
                              loo_controls=False, warn=False)
        c = st.combined[0].excess
        row = {"candidate": cand, "reference": ref, "label": label, "controls": ctl,
               "combined": {"excess": c.estimate if c else None,
                            "ci": list(c.confidence_interval) if c and c.has_interval else [None, None]}}
        for r in st.results:
            row[r.battery] = {"similarity": r.similarity.estimate, "excess": r.excess.estimate,
                              "rank_excess": r.rank_excess.estimate, "n_prompts": r.n_prompts,
                              "ci": list(r.excess.confidence_interval) if r.excess.has_interval else [None, None]}
        rows.append(row)

    def value(row, bat, key):
        if bat == "combined":
            if key == "excess":
                return row["combined"]["excess"]
            vals = [row[b][key] for b in bnames if row[b][key] is not None and np.isfinite(row[b][key])]
            return float(np.mean(vals)) if vals else float("nan")
        return row[bat][key]

    leading = f"excess ({DEFAULT_SCALE} scale, {DEFAULT_BASELINE} sides)"
    scores = {leading: "excess", "rank excess (both sides)": "rank_excess", "raw similarity (no baseline)": "similarity"}
    separation = []
    for bat in [*bnames, "combined"]:
        for sname, key in scores.items():
            if bat == "combined" and key == "rank_excess":
                continue
            pos = [value(r, bat, key) for r in rows if r["label"] == "derived"]
            neg = [value(r, bat, key) for r in rows if r["label"] == "independent"]
            pos = [x for x in pos if x is not None and np.isfinite(x)]
            neg = [x for x in neg if x is not None and np.isfinite(x)]
            separation.append({"batteries": bat if bat != "combined" else "combined", "score": sname,
                               "auroc": auroc(pos, neg), "tpr_at_1pct_fpr": tpr_at_fpr(pos, neg, 0.01),
                               "n_derived": len(pos), "n_independent": len(neg)})
    print(f"{'batteries':10s} {'score':40s} AUROC  TPR@1%FPR")
    for s in separation:
        print(f"{s['batteries']:10s} {s['score']:40s} {s['auroc']:.3f}  {s['tpr_at_1pct_fpr']:.3f}")

    # 3. scrubbed-a with and without the self-ID battery
    scrubbed = {}
    for way, use in (("with self_id", bnames), ("without self_id", [b for b in bnames if not b.startswith("self_id")])):
        st = audit_statistics([t for t in tables if t.battery in use], SCRUBBED[0], [SCRUBBED[1]], CONTROLS,
                              n_resamples=B, n_permutations=0, rng=a.seed, warn=False)
        c = st.combined[0].excess
        scrubbed[way] = {"batteries": use, "combined": c.estimate,
                         "combined_ci": list(c.confidence_interval) if c.has_interval else [None, None],
                         "weights": st.combined[0].weights,
                         "per_battery": {r.battery: {"excess": r.excess.estimate,
                                                     "ci": list(r.excess.confidence_interval)
                                                     if r.excess.has_interval else [None, None]}
                                         for r in st.results}}
        ci = scrubbed[way]["combined_ci"]
        print(f"scrubbed-a vs teacher-a, {way}: combined excess {c.estimate:.3f} (95% CI {ci[0]} to {ci[1]})")

    # 2. power curve
    t0 = time.time()
    print("power curve (seqkd-a vs teacher-a):", flush=True)
    power = power_curves(datas, n_grid, sample_grid, draws, PB, a.seed)
    power["seconds"] = round(time.time() - t0, 1)

    result = {
        "benchmark": "zoo_detection", "what": "zoo: derived vs independent pairs per battery and combined, power "
        "curve of seqkd-a vs teacher-a, scrubbed-a with and without self-ID",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": a.quick,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "gpu": None},
        "batteries": [b.name for b in batteries], "battery_filters": bats,
        "n_prompts": {d.battery.name: len(d.prompt_ids) for d in datas},
        "samples": {d.battery.name: samples or d.battery.generation.samples for d in datas},
        "n_resamples": B, "seed": a.seed, "leading": {"baseline": DEFAULT_BASELINE, "scale": DEFAULT_SCALE},
        "leading_score": leading,
        "protocol": "references = the teachers; candidates = every other zoo model; controls = control-1..3 less the "
                    "candidate; derived = the teacher is among the candidate's parents (lineage.json); independent = "
                    "no shared lineage (a-reseed against teacher-a, the same recipe re-seeded, is left out); combined "
                    "= equal-weight mean of the batteries' excesses in the same replicates",
        "separation": separation, "power": power, "scrubbed_a": scrubbed, "pairs": rows,
        "seconds_collect": round(collected, 1), "seconds": round(time.time() - start, 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {a.out} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
