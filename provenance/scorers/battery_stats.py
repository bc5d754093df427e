"""Battery-specific statistics beside the per-prompt similarity that every battery has.

- self_id: how often the candidate claims each reference's maker, against how often the
  controls do (per prompt, the share of samples claiming it; the excess has a cluster
  bootstrap interval over prompts); and how close the candidate's whole claim distribution
  (over makers and "no claim") is to each reference's: one minus the total variation
  distance, against the same closeness for the controls (percentile bootstrap over prompts).
- ngram family: usage of reference-distinctive n-grams by the candidate against the controls
  (:mod:`provenance.scorers.distinctive`), with the top shared distinctive n-grams.
- likelihood: the white-box checks (:func:`provenance.scorers.likelihood.likelihood_statistics`).

Each returns a plain dict (report.json's ``battery_statistics`` entries) or None.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

from ..stats.bootstrap import CHUNK_CELLS

if TYPE_CHECKING:
    from ..analysis import BatteryData

NO_CLAIM = "(no claim)"


def battery_statistics(datas: list["BatteryData"], candidate: str, references: list[str], controls: list[str], *,
                       confidence_level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> list[dict]:
    """The battery-specific statistics of every battery that has them."""
    from . import get_scorer
    from .likelihood import LikelihoodScorer, likelihood_statistics
    from .ngram import CharNgramScorer, NgramScorer
    from .self_id import SelfIdScorer

    out = []
    opts = dict(confidence_level=confidence_level, n_resamples=n_resamples, seed=seed)
    for d in datas:
        sc = get_scorer(d.battery.scorer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(sc, SelfIdScorer):
                res = self_id_statistics(d, candidate, references, controls, **opts)
            elif isinstance(sc, (NgramScorer, CharNgramScorer)):
                res = ngram_statistics(d, candidate, references, controls, **opts)
            elif isinstance(sc, LikelihoodScorer):
                res = likelihood_statistics(d, candidate, references, controls, **opts)
            else:
                res = None
        if res:
            out.append(_clean(res))
    return out


def _clean(x):
    """JSON-safe: NaN and infinities become None, numpy numbers plain floats, tuples lists."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    return x


# --- self-identification --------------------------------------------------------------------

def claim_rates(features: list[list[list[str]]], maker: str) -> np.ndarray:
    """Per prompt, the share of a model's samples that claim ``maker`` (NaN without samples)."""
    return np.array([np.mean([maker in f for f in feats]) if feats else math.nan for feats in features])


def claim_counts(features: list[list[list[str]]], categories: list[str]) -> np.ndarray:
    """(prompts, categories) weights: each sample spreads 1 over the makers it claims, or
    counts as "no claim"."""
    idx = {c: j for j, c in enumerate(categories)}
    out = np.zeros((len(features), len(categories)))
    for i, feats in enumerate(features):
        for f in feats:
            if f:
                for m in f:
                    out[i, idx[m]] += 1.0 / len(f)
            else:
                out[i, idx[NO_CLAIM]] += 1.0
    return out


def _closeness(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One minus the total variation distance of the distributions of two count vectors, or
    of each row of two (replicates x categories) matrices; NaN where either is empty."""
    sa, sb = a.sum(axis=-1, keepdims=True), b.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 1.0 - 0.5 * np.abs(a / sa - b / sb).sum(axis=-1)
    return np.where((sa[..., 0] > 0) & (sb[..., 0] > 0), out, math.nan)


def self_id_statistics(data: "BatteryData", candidate: str, references: list[str], controls: list[str], *,
                       confidence_level: float, n_resamples: int, seed: int, makers: dict[str, str] | None = None
                       ) -> dict[str, Any]:
    """Claim rates of each reference's maker and closeness of whole claim distributions.
    A reference's maker is the one it claims most often in this battery (or ``makers[ref]``)."""
    from ..stats.basic import bootstrap_mean
    from . import get_scorer

    display = get_scorer(data.battery.scorer).lexicon.display
    feats = data.features
    out: dict[str, Any] = {"battery": data.battery.name, "kind": "self_id", "claim_rates": [], "distribution": []}
    opts = dict(confidence_level=confidence_level, n_resamples=n_resamples, rng=seed)
    for ref in references:
        counts = Counter(m for per in feats[ref] for f in per for m in f)
        maker = (makers or {}).get(ref) or (counts.most_common(1)[0][0] if counts else None)
        row: dict[str, Any] = {"reference": ref, "maker": maker, "maker_display": display.get(maker, maker)}
        if maker is None:
            row["note"] = f"{ref} claims no maker in this battery, so there is no maker to count claims of"
            out["claim_rates"].append(row)
            continue
        rc = claim_rates(feats[candidate], maker)
        row["reference_rate"] = _mean(claim_rates(feats[ref], maker))
        row["candidate_rate"] = _mean(rc)
        row["control_rates"] = {k: _mean(claim_rates(feats[k], maker)) for k in controls}
        if controls:
            base = np.nanmean(np.vstack([claim_rates(feats[k], maker) for k in controls]), axis=0)
            row["excess"] = bootstrap_mean(rc - base, **opts).to_dict()
            row["what"] = ("per prompt, the share of the candidate's samples claiming the reference's maker minus the "
                           "mean share for the controls; mean over prompts")
        out["claim_rates"].append(row)
    # whole claim distributions
    labels = [candidate, *references, *controls]
    cats = sorted({m for lab in labels for per in feats[lab] for f in per for m in f}) + [NO_CLAIM]
    mats = {lab: claim_counts(feats[lab], cats) for lab in labels}
    n = len(data.prompt_ids)
    reps = min(int(n_resamples), 2000)
    # per replicate, each model's claim totals: (replicate counts of the prompts) @ mats,
    # from the draws of one rng.integers(0, n, size=(reps, n)) call, a chunk at a time
    totals = {lab: [] for lab in labels}
    if n:
        rng = np.random.default_rng(seed)
        step = max(1, CHUNK_CELLS // n)
        for start in range(0, reps, step):
            rows = min(step, reps - start)
            idx = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
            counts = np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n).astype(float)
            for lab in labels:
                totals[lab].append(counts @ mats[lab])
    totals = {lab: np.vstack(t) if t else np.zeros((0, len(cats))) for lab, t in totals.items()}
    full = {lab: mats[lab].sum(axis=0)[None, :] for lab in labels}
    alpha = (1 - confidence_level) / 2
    for ref in references:
        def stat(tot, ref=ref):
            s = _closeness(tot[candidate], tot[ref])
            b = np.nanmean([_closeness(tot[k], tot[ref]) for k in controls], axis=0) if controls else \
                np.full(s.shape, math.nan)
            return s, b
        s, b = (float(v[0]) for v in stat(full))
        ex = np.subtract(*stat(totals)) if n else np.array([])
        ex = ex[np.isfinite(ex)]
        row = {"reference": ref, "closeness": s, "control_closeness": b, "excess": s - b,
               "categories": [display.get(c, c) for c in cats],
               "what": "1 - total variation distance between the claim distributions (makers and no claim) of the "
                       "candidate and the reference, minus the mean of the same for the controls",
               "confidence_interval": [float(np.quantile(ex, alpha)), float(np.quantile(ex, 1 - alpha))]
               if ex.size else None,
               "method": f"percentile bootstrap over prompts ({reps} resamples, seed {seed})",
               "confidence_level": confidence_level, "n_prompts": n,
               "distributions": {lab: dict(zip([display.get(c, c) for c in cats],
                                                [round(float(v), 3) for v in mats[lab].sum(axis=0)]))
                                 for lab in (candidate, ref)}}
        out["distribution"].append(row)
    return out


# --- n-grams --------------------------------------------------------------------------------

def ngram_statistics(data: "BatteryData", candidate: str, references: list[str], controls: list[str], *,
                     confidence_level: float, n_resamples: int, seed: int) -> dict[str, Any] | None:
    """Usage of each reference's distinctive word n-grams by the candidate against the controls."""
    from ..stats.basic import bootstrap_mean
    from .distinctive import distinctive_excess, grams_of, target_summary

    def prompt_counts(lab):
        """``lab``'s n-gram token counts, a prompt at a time (all its samples together)."""
        for per in data.responses[lab]:  # one count of every sample's tokens: gram_counts summed
            yield Counter(chain.from_iterable(grams_of(r.text) for r in per))

    # Only n-grams a reference used at least twice, on two prompts, can be selected, so a model's
    # counts are kept for those alone: one sparse (prompts x kept n-grams) table of integer
    # counts per model, built a prompt at a time, and each prompt's token count (all its
    # n-grams); the per-prompt counts of every n-gram of every model are never held. From these
    # come distinctive_excess's per-reference tables (its cache's ("table", R, label) entries:
    # R's eligible n-grams' columns, as floats), the same numbers as it would build from
    # counts (integer counts, so every sum is exact). The references' own totals (what their
    # selections need of them) are computed first, a reference at a time.
    from scipy import sparse

    cache: dict = {}
    n = len(data.prompt_ids)
    labels = list(dict.fromkeys([candidate, *references, *controls]))
    if len([k for k in controls if k != candidate]) >= 2:
        for ref in references:
            cache[("target", ref)] = target_summary(prompt_counts(ref))
        keep = list(dict.fromkeys(g for ref in references for g in cache[("target", ref)][0]))
        kidx = {g: j for j, g in enumerate(keep)}
        kkeys = kidx.keys()
        full: dict[str, tuple] = {}
        for lab in labels:
            indptr, indices, values, ntok = [0], [], [], np.zeros(n)
            for i, c in enumerate(prompt_counts(lab)):
                ntok[i] = sum(c.values())
                shared = kkeys & c.keys()
                indices.append(np.fromiter(map(kidx.__getitem__, shared), dtype=np.int64, count=len(shared)))
                values.append(np.fromiter(map(c.__getitem__, shared), dtype=np.int64, count=len(shared)))
                indptr.append(indptr[-1] + len(shared))
            m = sparse.csr_matrix((np.concatenate(values) if values else np.zeros(0, np.int64),
                                   np.concatenate(indices) if indices else np.zeros(0, np.int64),
                                   np.array(indptr)), shape=(n, len(keep)))
            m.sort_indices()
            full[lab] = (m, ntok)
        for ref in references:
            cols = np.array([kidx[g] for g in cache[("target", ref)][0]], dtype=np.int64)
            for lab in labels:
                m, ntok = full[lab]
                mr = m[:, cols].astype(float).tocsr()
                cache[("table", ref, lab)] = (np.asarray(mr.sum(axis=0)).ravel(), float(ntok.sum()), mr, ntok)
        del full
    out: dict[str, Any] = {"battery": data.battery.name, "kind": "distinctive_ngrams", "references": [],
                           "what": "share of the candidate's word 2- to 4-gram tokens that are among the reference's "
                                   "distinctive n-grams (log-odds ratio with an informative Dirichlet prior against "
                                   "the controls' answers, each control left out of its own selection), minus the "
                                   "same share for the controls; mean over prompts"}
    for ref in references:
        res = distinctive_excess(None, candidate, ref, controls, cache=cache, n_prompts=n)
        if "error" in res:
            out["references"].append({"reference": ref, "note": res["error"]})
            continue
        out["references"].append({
            "reference": ref, "n_distinctive": res["n_distinctive"],
            "candidate_usage": _mean(res["candidate_usage"]), "control_usage": _mean(res["control_usage"]),
            "excess": bootstrap_mean(res["excess"], confidence_level=confidence_level, n_resamples=n_resamples,
                                     rng=seed).to_dict(),
            "shared": res["shared"]})
    return out


def _mean(x) -> float | None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None
