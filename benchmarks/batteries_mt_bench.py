"""Per battery on real MT-bench transcripts: documented student-teacher pairs against independent pairs.

Reads ``../shared/data/mt_bench.jsonl.gz`` (36 models, 160 prompts, one answer each),
``pairs.json`` and ``lineage.json`` in place (their text never enters the repo). The scorers
that apply to any prompts are run on the transcripts: self-identification and the n-gram
family. The quirks battery needs its own trigger prompts sampled several times, and the
white-box battery needs local weights: neither applies to published transcripts.

Protocol (the one ``benchmarks/mt_bench.py`` uses): for each labelled pair the student is the
candidate and the teacher the reference; the controls are the models documented independent
of the reference (label ``independent`` in pairs.json) minus the pair and their re-runs. Per
battery, the excess is the point estimate of similarity minus the mean of the reference-side
and candidate-side baselines (``similarity`` scale) and the share of those baseline
similarities that the candidate's exceeds, minus 1/2 (``rank`` scale, the stats layer's
default). Battery-specific statistics: the self-ID claim rate of the reference's maker
(its organisation in lineage.json) and claim-distribution closeness; the usage of
reference-distinctive n-grams. AUROC and TPR at 1% FPR of each score, ``derived`` pairs
against ``independent`` ones, beside the naive raw word-3-gram Jaccard baseline.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/batteries_mt_bench.py`` (a few minutes).
Writes ``benchmarks/results/batteries_mt_bench.json`` and the table between the
``<!-- mt_bench:begin -->`` and ``<!-- mt_bench:end -->`` markers of the battery READMEs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.scorers import get_scorer  # noqa: E402
from provenance.scorers.battery_stats import NO_CLAIM, _closeness, claim_counts, claim_rates  # noqa: E402
from provenance.scorers.distinctive import distinctive_excess, gram_counts  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "batteries_mt_bench.json"
READMES = {"self_id": ["self_id"], "ngram": ["ngram", "ngram3", "ngram_word", "ngram_char", "ngram_pos",
                                             "distinctive"], "quirks": [], "likelihood": []}
SCORERS = ["self_id", "ngram3", "ngram", "ngram_word", "ngram_char", "ngram_pos"]
BEGIN, END = "<!-- mt_bench:begin -->", "<!-- mt_bench:end -->"


def base_name(m: str) -> str:
    return m.split("@")[0]


def auroc(pos, neg) -> float:
    from scipy.stats import rankdata

    pos = np.asarray([p for p in pos if np.isfinite(p)], float)
    neg = np.asarray([n for n in neg if np.isfinite(n)], float)
    if not pos.size or not neg.size:
        return math.nan
    r = rankdata(np.r_[pos, neg])
    return float((r[:pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def tpr_at_fpr(pos, neg, fpr: float = 0.01) -> float:
    pos = np.asarray([p if np.isfinite(p) else -np.inf for p in pos], float)
    neg = np.sort(np.asarray([n if np.isfinite(n) else -np.inf for n in neg], float))
    if not pos.size or not neg.size:
        return math.nan
    thr = neg[neg.size - 1 - int(math.floor(fpr * neg.size))]
    return float(np.mean(pos > thr))


def heaviside(x):
    return np.where(np.isnan(x), np.nan, (x > 0) + 0.5 * (x == 0))


def nanmean(a, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


class Table:
    """Per-prompt similarity of any two models under one scorer (one answer each)."""

    def __init__(self, scorer: str, texts: dict[str, list[str]]):
        self.sc = get_scorer(scorer)
        self.feats = {m: [self.sc.prepare(self.sc.features(t, None)) for t in ts] for m, ts in texts.items()}
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    def s(self, a: str, b: str) -> np.ndarray:
        key = tuple(sorted((a, b)))
        if key not in self.cache:
            fa, fb = self.feats[key[0]], self.feats[key[1]]
            self.cache[key] = np.array([self.sc.similarity([x], [y]) for x, y in zip(fa, fb)], dtype=float)
        return self.cache[key]


def excesses(t: Table, cand: str, ref: str, controls: list[str]) -> dict[str, float]:
    s = t.s(cand, ref)
    ks_ref = np.vstack([t.s(k, ref) for k in controls])
    ks_cand = np.vstack([t.s(cand, k) for k in controls])
    sim = s - (nanmean(ks_ref, 0) + nanmean(ks_cand, 0)) / 2
    rank = (nanmean(heaviside(s - ks_ref), 0) + nanmean(heaviside(s - ks_cand), 0)) / 2 - 0.5
    return {"similarity": float(nanmean(s)), "similarity excess": float(nanmean(sim)),
            "rank excess": float(nanmean(rank))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-readme", action="store_true", help="do not update the battery READMEs")
    ap.add_argument("--readme-only", action="store_true", help="rewrite the README tables from --out, computing nothing")
    a = ap.parse_args(argv)
    if a.readme_only:
        result = json.loads(a.out.read_text())
        for readme, names in READMES.items():
            update_readme(ROOT / "probes" / readme / "README.md", result, names)
        return 0
    start = time.time()
    texts: dict[str, dict[str, str]] = defaultdict(dict)
    with gzip.open(a.data / "mt_bench.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            texts[r["model"]][r["prompt_id"]] = r.get("output") if isinstance(r.get("output"), str) else ""
    models = sorted(texts)
    prompts = sorted(set.intersection(*(set(v) for v in texts.values())))
    per_model = {m: [texts[m][p] for p in prompts] for m in models}
    pairs = [p for p in json.loads((a.data / "pairs.json").read_text()) if p["source"] == "mt_bench"]
    lineage = json.loads((a.data / "lineage.json").read_text())
    org_of = {}
    for entry in lineage.values():
        for alias in entry.get("aliases", {}).get("mt_bench", []):
            org_of[alias] = entry.get("org")
    independent: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        if p["label"] == "independent":
            independent[p["student"]].add(p["teacher"])
            independent[p["teacher"]].add(p["student"])
    labelled = [(p["student"], p["teacher"], p["label"]) for p in pairs if p["label"] in ("derived", "independent")]

    def controls_for(ref, cand):
        drop = {base_name(cand), base_name(ref)}
        return sorted(m for m in models if m in independent.get(base_name(ref), set()) and base_name(m) not in drop)

    sid = get_scorer("self_id")
    lex = sid.lexicon
    display_to_key = {v.lower(): k for k, v in lex.display.items()}
    rows = [{"candidate": c, "reference": r, "label": lab, "controls": controls_for(r, c)} for c, r, lab in labelled]
    timings = {}
    for name in SCORERS:
        t0 = time.time()
        t = Table(name, per_model)
        for row in rows:
            if len(row["controls"]) >= 1:
                row[name] = excesses(t, row["candidate"], row["reference"], row["controls"])
        if name == "self_id":
            feats = {m: [[f] for f in t.feats[m]] for m in models}  # one sample per prompt
            for row in rows:
                ctl = row["controls"]
                org = (org_of.get(base_name(row["reference"])) or "").lower()
                maker = display_to_key.get(org) or display_to_key.get(org.split(" /")[0])
                if maker and ctl:
                    rc = claim_rates(feats[row["candidate"]], maker)
                    base = nanmean(np.vstack([claim_rates(feats[k], maker) for k in ctl]), 0)
                    row["claim rate"] = {"maker": maker, "candidate": float(nanmean(rc)),
                                         "controls": float(nanmean(base)), "excess": float(nanmean(rc - base))}
                labels = [row["candidate"], row["reference"], *ctl]
                cats = sorted({m for lab in labels for per in feats[lab] for f in per for m in f}) + [NO_CLAIM]
                tot = {lab: claim_counts(feats[lab], cats).sum(axis=0) for lab in labels}
                s = _closeness(tot[row["candidate"]], tot[row["reference"]])
                b = nanmean([_closeness(tot[k], tot[row["reference"]]) for k in ctl]) if ctl else math.nan
                row["claim distribution"] = {"closeness": s, "controls": float(b), "excess": float(s - b)}
        timings[name] = round(time.time() - t0, 1)
        print(f"{name}: {timings[name]} s", flush=True)
    t0 = time.time()
    counts = {m: [gram_counts(x) for x in per_model[m]] for m in models}
    cache: dict = {}
    for row in rows:
        res = distinctive_excess(counts, row["candidate"], row["reference"], row["controls"], cache=cache)
        if "error" not in res:
            row["distinctive"] = {"excess": float(nanmean(res["excess"])), "n_distinctive": res["n_distinctive"],
                                  "candidate_usage": float(nanmean(res["candidate_usage"])),
                                  "control_usage": float(nanmean(res["control_usage"]))}
    timings["distinctive"] = round(time.time() - t0, 1)

    def sep(key, sub):
        pos = [r.get(key, {}).get(sub, math.nan) for r in rows if r["label"] == "derived"]
        neg = [r.get(key, {}).get(sub, math.nan) for r in rows if r["label"] == "independent"]
        return {"auroc": auroc(pos, neg), "tpr_at_1pct_fpr": tpr_at_fpr(pos, neg),
                "n_derived": int(sum(np.isfinite(pos))), "n_independent": int(sum(np.isfinite(neg)))}

    table = []
    what = {"self_id": "self_id: share a claimed maker", "ngram3": "ngram3: word 3-gram Jaccard",
            "ngram": "ngram: word 1-3-gram Jaccard", "ngram_word": "ngram_word: word 1-4-gram Jaccard",
            "ngram_char": "ngram_char: character 1-4-gram Jaccard", "ngram_pos": "ngram_pos: POS 4-6-gram Jaccard"}
    for name in SCORERS:
        for sub in ("similarity", "similarity excess", "rank excess"):
            table.append({"battery": name, "statistic": f"{what[name]}; {sub}" + (" (no baseline)" if sub == "similarity"
                                                                                 else ""), **sep(name, sub)})
    table.append({"battery": "self_id", "statistic": "self_id: claim rate of the reference's maker; excess over "
                                                     "controls", **sep("claim rate", "excess")})
    table.append({"battery": "self_id", "statistic": "self_id: claim-distribution closeness; excess over controls",
                  **sep("claim distribution", "excess")})
    table.append({"battery": "distinctive", "statistic": "ngram: usage of reference-distinctive word 2-4-grams; "
                                                         "excess over controls (leave one control out)",
                  **sep("distinctive", "excess")})
    naive = sep("ngram3", "similarity")
    result = {"what": "MT-bench: per battery, AUROC of excess similarity for documented derived pairs against "
                      "independent pairs", "data": "../shared/data/mt_bench.jsonl.gz", "n_models": len(models),
              "n_prompts": len(prompts), "protocol": "candidate = student, reference = teacher, controls = models "
              "documented independent of the reference minus the pair and their re-runs; point estimates",
              "naive_word3_jaccard": naive, "table": table, "timings_s": timings,
              "not_applicable": {"quirks": "needs its own trigger prompts, sampled several times per prompt",
                                 "likelihood": "needs local model weights (white-box)"},
              "pairs": [{k: (len(v) if k == "controls" else v) for k, v in r.items()} for r in rows],
              "seconds": round(time.time() - start, 1)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(_dump(_rounded(result)))
    md = markdown(result)
    print(md)
    if not a.no_readme:
        for readme, names in READMES.items():
            update_readme(ROOT / "probes" / readme / "README.md", result, names)
    print(f"wrote {a.out} in {result['seconds']} s")
    return 0


def _dump(result: dict) -> str:
    """JSON with one line per labelled pair (a readable, small record)."""
    head = json.dumps({k: v for k, v in result.items() if k != "pairs"}, indent=1)
    pairs = ",\n  ".join(json.dumps(r, separators=(",", ":")) for r in result["pairs"])
    return head[:-2] + ',\n "pairs": [\n  ' + pairs + "\n ]\n}\n"


def _rounded(x):
    """Floats to 5 significant digits (the JSON is a record, not an archive)."""
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    if hasattr(x, "tolist"):  # numpy arrays and scalars from the scorers
        return _rounded(x.tolist())
    if isinstance(x, float):
        return float(f"{x:.5g}") if math.isfinite(x) else None
    return x


def markdown(result: dict, names: list[str] | None = None) -> str:
    n = result["naive_word3_jaccard"]
    lines = [f"Written by `benchmarks/batteries_mt_bench.py` from `../shared/data/mt_bench.jsonl.gz` "
             f"({result['n_models']} models, {result['n_prompts']} prompts, one answer each): documented derived "
             f"pairs against independent pairs ({n['n_derived']} and {n['n_independent']}), student as candidate, "
             f"teacher as reference, controls documented independent of the teacher.", "",
             "| statistic | AUROC | TPR at 1% FPR |", "|---|---|---|",
             f"| naive baseline: raw word-3-gram Jaccard (no controls) | {n['auroc']:.3f} | {n['tpr_at_1pct_fpr']:.2f} |"]
    for row in result["table"]:
        if names is not None and row["battery"] not in names:
            continue
        lines.append(f"| {row['statistic']} | {row['auroc']:.3f} | {row['tpr_at_1pct_fpr']:.2f} |")
    allowed = int(math.floor(0.01 * n["n_independent"]))
    lines += ["", f"Excess: point estimates; \"similarity excess\" subtracts the mean of the reference-side and "
                  f"candidate-side baselines, \"rank excess\" is the stats layer's default scale. TPR at 1% FPR: the "
                  f"share of derived pairs above the threshold that at most {allowed} of the {n['n_independent']} "
                  f"independent pairs exceed (the rule of `benchmarks/mt_bench.py`). The naive baseline's figures "
                  f"quoted when this battery work was planned (AUROC 0.886, TPR 0.50) came from another run; "
                  f"recomputed here on the same pairs it is {n['auroc']:.3f} and {n['tpr_at_1pct_fpr']:.2f}."]
    return "\n".join(lines)


def update_readme(path: Path, result: dict, names: list[str]) -> None:
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return
    if names:
        block = markdown(result, names)
    else:
        n = result["naive_word3_jaccard"]
        why = result["not_applicable"].get(path.parent.name, "not applicable to transcripts")
        block = (f"Not applicable to MT-bench transcripts: this battery {why}. For comparison, the naive raw "
                 f"word-3-gram Jaccard baseline there has AUROC {n['auroc']:.3f} and TPR at 1% FPR "
                 f"{n['tpr_at_1pct_fpr']:.2f} (`benchmarks/batteries_mt_bench.py`).")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
