"""Pool mode: many models at once.

- The matrix of pairwise similarities, per battery and combined over batteries (weighted
  mean, explicit weights), each with its cluster-bootstrap interval over prompts.
- For a chosen candidate, a ranking of possible teachers: every other model that is not a
  control, scored by its combined excess (the audit's baseline side and scale, against the
  given controls), with how often each ranks first across the bootstrap replicates. Without
  controls there is no baseline, and the ranking is by combined similarity (reported so).

All estimates share one set of replicates, so "ranks first in 97% of replicates" is a
statement about the same resampled prompts for every model. Also here: AUROC and the true
positive rate at a fixed false positive rate, for benchmarks on labelled pairs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bootstrap import Resampler, bootstrap_statistic, check_options, method_name, resolve_rng
from .estimate import ConfidenceInterval, Estimate
from .excess import BASELINES, DEFAULT_BASELINE, DEFAULT_SCALE, SCALES, ScoreTable, _weights, contrasts

__all__ = ["PairSimilarity", "PoolStatistics", "TeacherEntry", "TeacherRanking", "auroc", "pool_statistics",
           "tpr_at_fpr"]


@dataclass(frozen=True)
class PairSimilarity:
    a: str
    b: str
    by_battery: dict[str, Estimate]
    combined: Estimate | None

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "by_battery": {k: v.to_dict() for k, v in self.by_battery.items()},
                "combined": None if self.combined is None else self.combined.to_dict()}


@dataclass(frozen=True)
class TeacherEntry:
    reference: str
    score: Estimate
    p_first: float  # share of replicates in which this model ranks first
    mean_rank: float  # mean rank over replicates (1 = first)
    rank: int  # rank of the point estimate

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "score": self.score.to_dict(), "p_first": float(self.p_first),
                "mean_rank": float(self.mean_rank), "rank": int(self.rank)}


@dataclass(frozen=True)
class TeacherRanking:
    candidate: str
    controls: tuple[str, ...]
    score: str  # what the models are ranked by, in words
    entries: tuple[TeacherEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "controls": list(self.controls), "score": self.score,
                "entries": [e.to_dict() for e in self.entries]}


@dataclass(frozen=True)
class PoolStatistics:
    models: tuple[str, ...]
    batteries: tuple[str, ...]
    weights: dict[str, float]
    pairs: tuple[PairSimilarity, ...]
    rankings: tuple[TeacherRanking, ...]
    baseline: str
    scale: str
    confidence_level: float
    n_resamples: int
    seed: int | None
    method: str

    def pair(self, a: str, b: str) -> PairSimilarity:
        return next(p for p in self.pairs if {p.a, p.b} == {a, b})

    def matrix(self, battery: str | None = None) -> np.ndarray:
        """(n_models, n_models) point estimates (combined when ``battery`` is None); NaN diagonal."""
        idx = {m: i for i, m in enumerate(self.models)}
        out = np.full((len(self.models),) * 2, np.nan)
        for p in self.pairs:
            e = p.combined if battery is None else p.by_battery.get(battery)
            if e is not None:
                out[idx[p.a], idx[p.b]] = out[idx[p.b], idx[p.a]] = e.estimate
        return out

    def describe(self) -> dict[str, Any]:
        return {"confidence_level": self.confidence_level, "n_resamples": self.n_resamples,
                "seed": self.seed if self.seed is not None else 0, "method": self.method,
                "baseline": BASELINES[self.baseline], "baseline_side": self.baseline,
                "combined_scale": SCALES[self.scale], "weights": dict(self.weights)}


def pool_statistics(
    tables: Sequence[ScoreTable],
    models: Sequence[str],
    *,
    candidates: Sequence[str] = (),
    controls: Sequence[str] = (),
    baseline: str = DEFAULT_BASELINE,
    scale: str = DEFAULT_SCALE,
    weights: Mapping[str, float] | str = "equal",
    confidence_level: float = 0.95,
    n_resamples: int = 9999,
    method: str = "auto",
    rng: int | np.random.Generator | None = 0,
    warn: bool = False,
) -> PoolStatistics:
    """Pairwise similarities of ``models`` and, for each of ``candidates``, a teacher ranking.

    Degenerate pairs (e.g. a model with no responses) get NaN intervals; with ``warn`` each
    one also warns (off by default: a pool has hundreds of pairs).
    """
    check_options(confidence_level, n_resamples, method)
    if baseline not in BASELINES or scale not in SCALES:
        raise ValueError(f"baseline must be one of {list(BASELINES)} and scale one of {list(SCALES)}")
    models, controls = list(models), list(controls)
    if len(set(models)) != len(models):
        raise ValueError("model labels must be distinct")
    missing = [m for m in [*candidates, *controls] if m not in models]
    if missing:
        raise ValueError(f"not in the pool: {', '.join(missing)}")
    names = [t.battery for t in tables]
    w = _weights(weights, names)
    seed, gen = resolve_rng(rng)
    B = int(n_resamples)
    resampler = Resampler({t.battery: t.prompt_keys for t in tables}, B, gen)
    opts = dict(confidence_level=confidence_level, n_resamples=B, seed=seed, method=method, warn=warn)
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]

    # similarity matrix
    blocks = {t.battery: resampler.block(t.battery, np.column_stack([t.s(a, b) for a, b in pairs]) if pairs
                                         else np.zeros((t.n, 0))) for t in tables}
    out_pairs = []
    for j, (a, b) in enumerate(pairs):
        by = {}
        for t in tables:
            by[t.battery] = _quiet(bootstrap_statistic, lambda m, bb=t.battery, j=j: m[bb][..., j], blocks,
                                   {t.battery: [j]}, warn_=warn, **opts)
        have = [t.battery for t in tables if np.isfinite(blocks[t.battery].values[:, j]).sum() >= 2]
        ww = {bb: w[bb] / sum(w[x] for x in have) for bb in have} if have and sum(w[x] for x in have) > 0 else {}
        comb = None
        if ww:
            comb = _quiet(bootstrap_statistic, lambda m, j=j, ww=ww: sum(v * m[bb][..., j] for bb, v in ww.items()),
                          blocks, {bb: [j] for bb in ww}, warn_=warn, **opts)
        out_pairs.append(PairSimilarity(a, b, by, comb))

    # teacher rankings
    rankings = []
    for cand in candidates:
        possible = [m for m in models if m != cand and m not in controls]
        ctl = [k for k in controls if k != cand]
        rankings.append(_rank(tables, resampler, cand, possible, ctl, baseline, scale, w, opts))
    return PoolStatistics(tuple(models), tuple(names), w, tuple(out_pairs), tuple(rankings), baseline, scale,
                          float(confidence_level), B, seed,
                          f"{method_name('BCa')} where it behaves, else {method_name('percentile')}")


def _quiet(fn, *args, warn_: bool, **kw):
    if warn_:
        return fn(*args, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _rank(tables, resampler, cand, possible, controls, baseline, scale, w, opts) -> TeacherRanking:
    if not possible:
        return TeacherRanking(cand, tuple(controls), "nothing to rank", ())
    cols = {}
    for t in tables:
        if controls:
            cols[t.battery] = np.column_stack([contrasts(t, cand, r, controls)[("loo", scale, baseline)][0]
                                               for r in possible])
        else:
            cols[t.battery] = np.column_stack([t.s(cand, r) for r in possible])
    blocks = {b: resampler.block(b, x) for b, x in cols.items()}
    have = {b: np.isfinite(x).sum(axis=0) >= 2 for b, x in cols.items()}
    what = (f"combined {scale}-scale excess over the {baseline}-side baseline of {len(controls)} controls"
            if controls else "combined similarity (no controls, so no baseline)")
    n_r = len(possible)
    wt = np.zeros((len(tables), n_r))
    for i, t in enumerate(tables):
        wt[i] = np.where(have[t.battery], w[t.battery], 0.0)
    tot = wt.sum(axis=0)
    wt = np.divide(wt, tot, out=np.zeros_like(wt), where=tot > 0)
    order = [t.battery for t in tables]

    def stat(m):
        return sum(wt[i] * np.nan_to_num(m[b], nan=0.0) for i, b in enumerate(order))

    full = {b: blk.full for b, blk in blocks.items()}
    boot = {b: blk.boot for b, blk in blocks.items()}
    point = np.where(tot > 0, stat(full), np.nan)
    reps = np.where(tot > 0, stat(boot), -np.inf)  # (B, n_r)
    firsts = np.bincount(np.argmax(reps, axis=1), minlength=n_r) / reps.shape[0]
    ranks = (-reps).argsort(axis=1).argsort(axis=1) + 1
    mean_rank = ranks.mean(axis=0)
    point_rank = (-np.nan_to_num(point, nan=-np.inf)).argsort().argsort() + 1
    entries = []
    for j, r in enumerate(possible):
        uses = {b: [j] for b in order if have[b][j]}
        ww = {b: wt[i, j] for i, b in enumerate(order) if wt[i, j] > 0}
        est = _quiet(bootstrap_statistic, lambda m, j=j, ww=ww: sum(v * m[b][..., j] for b, v in ww.items()),
                     blocks, uses, warn_=opts["warn"], **{k: v for k, v in opts.items() if k != "warn"}) \
            if ww else Estimate(math.nan, ConfidenceInterval(math.nan, math.nan), math.nan, opts["confidence_level"], "none", 0,
                                opts["n_resamples"], opts["seed"])
        entries.append(TeacherEntry(r, est, float(firsts[j]), float(mean_rank[j]), int(point_rank[j])))
    entries.sort(key=lambda e: e.rank)
    return TeacherRanking(cand, tuple(controls), what, tuple(entries))


def auroc(positives, negatives) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    from scipy.stats import rankdata

    pos, neg = np.asarray(positives, float), np.asarray(negatives, float)
    if not pos.size or not neg.size:
        return math.nan
    r = rankdata(np.r_[pos, neg])
    return float((r[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def tpr_at_fpr(positives, negatives, fpr: float = 0.01) -> float:
    """Share of positives above the threshold that at most ``fpr`` of negatives exceed
    (the threshold is the smallest negative score with at most that share above it)."""
    pos, neg = np.asarray(positives, float), np.sort(np.asarray(negatives, float))
    if not pos.size or not neg.size:
        return math.nan
    allowed = int(math.floor(fpr * neg.size))  # negatives allowed strictly above the threshold
    thr = neg[neg.size - 1 - allowed]
    return float(np.mean(pos > thr))
