"""How far text similarity can separate derived from independent pairs on MT-bench.

The issue's goal for real transcripts is AUROC >= 0.95 (documented derived pairs against
documented-independent ones). ``mt_bench.py`` measures the shipped batteries; this script
asks whether *any* simple per-prompt similarity would do better, so that a shortfall can be
told apart from a weak default. It scores every labelled pair with the same protocol as
``mt_bench.py`` (candidate = student, reference = teacher, controls = models documented
independent of the reference, minus the pair and their re-runs) under a grid of variants:

- similarity per prompt: Jaccard of n-gram sets, Ochiai (cosine of the sets: less penalty for
  a length mismatch), and TF-IDF cosine with the inverse document frequency taken over the
  models' answers to that prompt (n-grams every model writes, such as words of the question,
  count for little);
- n-gram orders: words 1, 3, 1-3 and 2-4;
- scale: raw similarity, similarity excess over the two-sided baseline, rank excess (the
  share of controls the pair beats on each prompt, from both sides);
- prompts: all, and each MT-bench category alone (for the best variant).

Point estimates only (no bootstrap): the question is separation, not intervals. For the
best variant it lists where each derived pair falls among the independent pairs. Reads
``../shared/data/`` in place; where the data are absent it says so and writes nothing.

Run: ``.venv/bin/python benchmarks/mt_bench_sweep.py`` (about two minutes). Writes
``benchmarks/results/mt_bench_sweep.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import sparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mt_bench import DATA, controls_for  # noqa: E402
from provenance.scorers.ngram import joined_ngrams, words  # noqa: E402
from provenance.stats.pool import auroc, tpr_at_fpr  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "mt_bench_sweep.json"
MEASURES = ("jaccard", "ochiai", "tfidf")
ORDERS = ((1,), (3,), (1, 2, 3), (2, 3, 4))
SCALES = ("raw", "similarity excess", "rank excess")


def ngrams(text: str, orders: tuple[int, ...]) -> Counter:
    """Word n-gram counts of all sizes in ``orders`` together, with the shipped scorers' words."""
    w = words(text)
    return Counter(g for n in orders for g in joined_ngrams(w, n))


def similarity_cube(texts: dict, models: list[str], prompts: list[str], measure: str,
                    orders: tuple[int, ...]) -> np.ndarray:
    """(prompts x models x models) similarities; NaN where a model has no answer."""
    index = {m: i for i, m in enumerate(models)}
    cube = np.full((len(prompts), len(models), len(models)), np.nan)
    for pi, p in enumerate(prompts):
        have = [m for m in models if (m, p) in texts]
        counts = [ngrams(texts[(m, p)], orders) for m in have]
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, c in enumerate(counts):
            for g, v in c.items():
                rows.append(i)
                cols.append(vocab.setdefault(g, len(vocab)))
                vals.append(v)
        x = sparse.csr_matrix((vals, (rows, cols)), shape=(len(have), len(vocab)), dtype=float)
        b = (x > 0).astype(float)
        size = np.asarray(b.sum(1)).ravel()
        if measure == "tfidf":
            df = np.asarray(b.sum(0)).ravel()
            idf = np.log((1 + len(have)) / (1 + df)) + 1
            w = x.copy()
            w.data = 1 + np.log(w.data)
            w = sparse.csr_matrix(w.multiply(idf[None, :]))
            norm = np.sqrt(np.asarray(w.multiply(w).sum(1)).ravel())
            w = sparse.diags(1 / np.where(norm > 0, norm, 1)) @ w
            sim = (w @ w.T).toarray()
        else:
            inter = (b @ b.T).toarray()
            if measure == "jaccard":
                union = size[:, None] + size[None, :] - inter
                sim = inter / np.maximum(union, 1)
            else:
                sim = inter / np.maximum(np.sqrt(size[:, None] * size[None, :]), 1)
        empty = size == 0
        sim[empty, :] = np.nan
        sim[:, empty] = np.nan
        idx = [index[m] for m in have]
        cube[pi][np.ix_(idx, idx)] = sim
    return cube


def pair_score(cube: np.ndarray, ci: int, ri: int, ki: list[int], scale: str) -> float:
    a, br, bc = cube[:, ci, ri], cube[:, ki, ri], cube[:, ci, ki]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a prompt where no control answered
        if scale == "raw":
            return float(np.nanmean(a))
        if scale == "similarity excess":
            return float(np.nanmean(a - (np.nanmean(br, 1) + np.nanmean(bc, 1)) / 2))
        beat = lambda b: np.nanmean((a[:, None] > b) + 0.5 * (a[:, None] == b), 1)  # noqa: E731
        return float(np.nanmean((beat(br) + beat(bc)) / 2 - 0.5))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    source = a.data / "mt_bench.jsonl.gz"
    if not source.exists() or not (a.data / "pairs.json").exists():
        print(f"skipped: {source} or {a.data / 'pairs.json'} is absent (real transcripts live in ../shared/data/)")
        return 0
    start = time.time()
    with gzip.open(source, "rt") as f:
        records = [json.loads(line) for line in f]
    models = sorted({r["model"] for r in records})
    prompts = sorted({r["prompt_id"] for r in records})
    category = {r["prompt_id"]: r.get("category") for r in records}
    texts = {(r["model"], r["prompt_id"]): r["output"] for r in records if r.get("output")}
    pairs = [p for p in json.loads((a.data / "pairs.json").read_text()) if p["source"] == "mt_bench"]
    independent: dict[str, set[str]] = {}
    for p in pairs:
        if p["label"] == "independent":
            independent.setdefault(p["student"], set()).add(p["teacher"])
            independent.setdefault(p["teacher"], set()).add(p["student"])
    index = {m: i for i, m in enumerate(models)}
    labelled = []
    for p in pairs:
        if p["label"] in ("derived", "independent"):
            ctl = controls_for(p["teacher"], p["student"], independent, models)
            if ctl:
                labelled.append((p["student"], p["teacher"], p["label"], [index[k] for k in ctl]))

    def separation(cube: np.ndarray, scale: str, exclude: str | None = None) -> dict:
        scores = [(pair_score(cube, index[c], index[r], ki, scale), label) for c, r, label, ki in labelled
                  if exclude not in (c, r)]
        pos = [s for s, label in scores if label == "derived"]
        neg = [s for s, label in scores if label == "independent"]
        return {"auroc": round(auroc(pos, neg), 4), "tpr_at_1pct_fpr": round(tpr_at_fpr(pos, neg, 0.01), 4),
                "n_derived": len(pos), "n_independent": len(neg)}

    table, cubes = [], {}
    for measure in MEASURES:
        for orders in ORDERS:
            cube = cubes[(measure, orders)] = similarity_cube(texts, models, prompts, measure, orders)
            for scale in SCALES:
                row = {"measure": measure, "orders": list(orders), "scale": scale, **separation(cube, scale)}
                table.append(row)
                print(json.dumps(row), flush=True)
    best = max(table, key=lambda r: (r["auroc"], r["tpr_at_1pct_fpr"]))
    cube = cubes[(best["measure"], tuple(best["orders"]))]
    # where each derived pair falls among the independent pairs (best variant)
    scored = sorted(((pair_score(cube, index[c], index[r], ki, best["scale"]), c, r, label)
                     for c, r, label, ki in labelled), reverse=True)
    positions = []
    for s, c, r, label in scored:
        if label == "derived":
            above = sum(1 for s2, *_, l2 in scored if l2 == "independent" and s2 > s)
            positions.append({"student": c, "teacher": r, "score": round(s, 4), "independent_pairs_above": above})
    top_independent = [{"pair": [c, r], "score": round(s, 4)} for s, c, r, label in scored if label == "independent"][:10]
    by_category = {}
    for cat in sorted({c for c in category.values() if c}):
        keep = [i for i, p in enumerate(prompts) if category[p] == cat]
        by_category[cat] = {"n_prompts": len(keep), **separation(cube[keep], best["scale"])}
    doc = {"benchmark": "mt_bench_sweep", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "what": "AUROC / TPR at 1% FPR of derived against independent MT-bench pairs for a grid of per-prompt "
                   "similarity measures, n-gram orders and scales (point estimates, mt_bench.py's control protocol)",
           "data": str(source), "n_models": len(models), "n_prompts": len(prompts),
           "table": table, "best": best, "best_range": [min(r["auroc"] for r in table), best["auroc"]],
           "best_without_chatglm-6b": separation(cube, best["scale"], exclude="chatglm-6b"),
           "derived_positions": positions, "top_independent": top_independent, "best_by_category": by_category,
           "seconds": round(time.time() - start, 1)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"best: {best}; wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
