"""Reference-distinctive n-grams: the wording a reference uses far more than independent models.

For a reference R and a background B (the controls' answers to the same prompts), every word
n-gram w gets a z-score from the log-odds ratio with an informative Dirichlet prior of Monroe,
Colaresi and Quinn (2008, "Fightin' Words"):

    delta_w = log((y_R,w + a_w) / (n_R + a_0 - y_R,w - a_w)) - log((y_B,w + a_w) / (n_B + a_0 - y_B,w - a_w))
    var_w  ~= 1 / (y_R,w + a_w) + 1 / (y_B,w + a_w),        z_w = delta_w / sqrt(var_w)

with a_w = a_0 * pi_w and pi_w the n-gram's share of R and B pooled (smoothed); the prior's
weight a_0 is a fixed share (5%) of the pooled token count, so the shrinkage means the same on
a zoo battery and on a benchmark. The n-grams
with the highest z (at least ``z_min``, used by R at least twice and on at least two prompts)
are R's *distinctive* n-grams D_R. A candidate's *usage* on a prompt is the share of its
n-gram tokens there that are in D_R.

Selecting D_R against the controls makes the controls look unlike R by construction, so each
control is compared on n-grams selected without it (leave one control out): for each control K,
D_R is selected against the other controls, and the per-prompt excess is usage(C) - usage(K) on
that D_R; the excess on a prompt is the mean over K. The candidate never enters any selection.
This needs at least two controls. The interval is a cluster bootstrap over prompts.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from itertools import chain
from typing import Iterable, Iterator, Sequence

import numpy as np

from .ngram import joined_ngrams, words

DEFAULT_NS = (2, 3, 4)
TOP = 400
Z_MIN = 3.0
ALPHA_SHARE = 0.05


def gram_counts(text: str, ns: Sequence[int] = DEFAULT_NS) -> Counter:
    """Word n-gram token counts of one text."""
    return Counter(grams_of(text, ns))


def grams_of(text: str, ns: Sequence[int] = DEFAULT_NS) -> Iterator[str]:
    """The word n-gram tokens of one text, sizes in the order of ``ns`` (what
    :func:`gram_counts` counts), as a stream."""
    w = words(text)
    return chain.from_iterable(joined_ngrams(w, n) for n in ns)


def log_odds_z(target: Counter, background: Counter, alpha0: float | None = None, *,
               keys: Iterable[str] | None = None, n_background: float | None = None) -> dict[str, float]:
    """z-score of every n-gram of ``target`` (or of ``keys``) for being used more by target
    than by background (``alpha0``: the prior's weight, by default 5% of the pooled token
    count; ``n_background``: the background's token count, if known)."""
    if not target:
        return {}
    keys = list(target if keys is None else keys)
    if not keys:
        return {}
    y_t = np.array([target[k] for k in keys], dtype=float)
    y_b = np.array([background.get(k, 0) for k in keys], dtype=float)
    n_t = float(sum(target.values()))
    n_b = float(sum(background.values())) if n_background is None else float(n_background)
    if alpha0 is None:
        alpha0 = max(1.0, ALPHA_SHARE * (n_t + n_b))
    vocab = len(target) + len(background)  # an upper bound; only smooths pi
    pi = (y_t + y_b + 0.01) / (n_t + n_b + 0.01 * vocab)
    a = alpha0 * pi
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.log((y_t + a) / (n_t + alpha0 - y_t - a)) - np.log((y_b + a) / (n_b + alpha0 - y_b - a))
        z = delta / np.sqrt(1.0 / (y_t + a) + 1.0 / (y_b + a))
    return {k: float(v) for k, v in zip(keys, z) if np.isfinite(v)}


def _target(target_prompts: list[Counter]) -> tuple[Counter, list[str]]:
    """R's total counts and the n-grams it used at least twice, on at least two prompts."""
    total: Counter = Counter()
    prompts: Counter = Counter()
    for c in target_prompts:
        total.update(c.elements())  # counted in C; update(c) would add key by key in Python
        prompts.update(c.keys())
    return total, [g for g, v in total.items() if v >= 2 and prompts[g] >= 2]


def target_summary(target_prompts: Iterable[Counter]) -> tuple[list[str], dict[str, int], np.ndarray, float, int]:
    """What :func:`distinctive_excess` needs of R's counts per prompt (which may be a stream):
    its eligible n-grams (:func:`_target`), their index, their totals, R's token count and its
    number of distinct n-grams; R's whole table of totals is not kept."""
    total, eligible = _target(target_prompts)
    return (eligible, {g: i for i, g in enumerate(eligible)}, np.array([total[g] for g in eligible], dtype=float),
            float(sum(total.values())), len(total))


def select(target_prompts: list[Counter] | tuple[Counter, list[str]], background: Counter, *, top: int = TOP,
           z_min: float = Z_MIN, alpha0: float | None = None, n_background: float | None = None) -> dict[str, float]:
    """R's distinctive n-grams {gram: z}: the ``top`` highest z of at least ``z_min``, among
    n-grams R used at least twice, on at least two prompts. ``target_prompts`` is R's counts
    per prompt (or :func:`_target` of them)."""
    total, eligible = target_prompts if isinstance(target_prompts, tuple) else _target(target_prompts)
    z = log_odds_z(total, background, alpha0, keys=eligible, n_background=n_background)
    keep = [(g, v) for g, v in z.items() if v >= z_min]
    keep.sort(key=lambda gv: (-gv[1], gv[0]))
    return dict(keep[:top])


def usage(prompt_counts: list[Counter], distinct: dict[str, float] | set[str]) -> np.ndarray:
    """Per prompt, the share of a model's n-gram tokens that are in ``distinct`` (NaN where
    the model gave no text)."""
    out = np.full(len(prompt_counts), math.nan)
    for i, c in enumerate(prompt_counts):
        n = sum(c.values())
        if n:
            if len(distinct) < len(c):
                out[i] = sum(c.get(g, 0) for g in distinct) / n
            else:
                out[i] = sum(v for g, v in c.items() if g in distinct) / n
    return out


def _sum(counters: Iterable[list[Counter]]) -> Counter:
    total: Counter = Counter()
    for per_prompt in counters:
        for c in per_prompt:
            total.update(c)
    return total


def distinctive_excess(counts: dict[str, list[Counter]] | None, candidate: str, reference: str, controls: list[str],
                       *, top: int = TOP, z_min: float = Z_MIN, alpha0: float | None = None, evidence: int = 15,
                       cache: dict | None = None, n_prompts: int | None = None) -> dict:
    """Per-prompt excess usage of R's distinctive n-grams by the candidate over the controls
    (leave one control out, see the module docstring), and the top shared distinctive n-grams.

    ``counts[label][i]`` is the n-gram token count of model ``label``'s samples on prompt i.
    Returns ``{"excess", "candidate_usage", "control_usage"}`` (arrays over prompts),
    ``n_distinctive`` (mean size of D_R over the leave-one-out selections) and ``shared``
    (n-grams of D_R selected against all controls that the candidate used, by z-score times
    the candidate's count), or ``{"error": ...}`` when it cannot be computed. ``cache`` (a dict
    kept by the caller) reuses per-model tables across calls on the same ``counts``; a caller
    that puts R's summary (``("target", R)``: :func:`target_summary`) and every model's table
    (``("table", R, label)``: see ``table`` below) in it may pass ``counts=None`` and
    ``n_prompts``.

    Vectorised: the z-scores of :func:`log_odds_z` over R's eligible n-grams, and usage as a
    sparse (prompts x n-grams) product; the same numbers as :func:`select` and :func:`usage`."""
    from scipy import sparse

    controls = [k for k in controls if k not in (candidate, reference)]
    if len(controls) < 2:
        return {"error": "needs at least two controls (each control is compared on n-grams selected against "
                         "the others)"}
    cache = {} if cache is None else cache
    if ("target", reference) not in cache:
        cache[("target", reference)] = target_summary(counts[reference])
    eligible, index, y_t, n_t, n_distinct = cache[("target", reference)]

    def table(label):
        """(totals over R's eligible n-grams, token count, sparse per-prompt counts, per-prompt token counts)."""
        key = ("table", reference, label)
        if key not in cache:
            rows, cols, vals, ntok = [], [], [], []
            for i, c in enumerate(counts[label]):
                ntok.append(sum(c.values()))
                for g, v in c.items():
                    j = index.get(g)
                    if j is not None:
                        rows.append(i)
                        cols.append(j)
                        vals.append(v)
            m = sparse.csr_matrix((vals, (rows, cols)), shape=(len(counts[label]), len(eligible)), dtype=float)
            vec = np.asarray(m.sum(axis=0)).ravel()
            cache[key] = (vec, float(sum(ntok)), m, np.array(ntok, dtype=float))
        return cache[key]

    n = len(counts[reference]) if counts is not None else int(n_prompts)
    if not eligible:
        return {"excess": np.full(n, math.nan), "candidate_usage": np.full(n, math.nan),
                "control_usage": np.full(n, math.nan), "n_distinctive": 0.0, "shared": []}
    tabs = {k: table(k) for k in [candidate, *controls]}
    bg_all = sum(tabs[k][0] for k in controls)
    n_all = sum(tabs[k][1] for k in controls)

    def chosen(y_b, n_b):
        z = _z(y_t, n_t, y_b, n_b, n_distinct, alpha0)
        ok = np.flatnonzero(np.isfinite(z) & (z >= z_min))
        order = ok[np.lexsort((np.array([eligible[i] for i in ok], dtype=object), -z[ok]))][:top] if ok.size else ok
        return order, z

    def use(label, cols):
        m, ntok = tabs[label][2], tabs[label][3]
        mask = np.zeros(len(eligible))
        mask[cols] = 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ntok > 0, (m @ mask) / np.maximum(ntok, 1), math.nan)

    diffs, cand_u, ctl_u, sizes = [], [], [], []
    for k in controls:
        cols, _ = chosen(bg_all - tabs[k][0], n_all - tabs[k][1])
        sizes.append(len(cols))
        uc, uk = use(candidate, cols), use(k, cols)
        diffs.append(uc - uk)
        cand_u.append(uc)
        ctl_u.append(uk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        excess = np.nanmean(np.vstack(diffs), axis=0)
        cu = np.nanmean(np.vstack(cand_u), axis=0)
        ku = np.nanmean(np.vstack(ctl_u), axis=0)
    cols_all, z_all = chosen(bg_all, n_all)
    cand_vec = tabs[candidate][0]
    shared = sorted((i for i in cols_all if cand_vec[i] > 0), key=lambda i: (-z_all[i] * cand_vec[i], eligible[i]))
    return {"excess": excess, "candidate_usage": cu, "control_usage": ku,
            "n_distinctive": float(np.mean(sizes)) if sizes else 0.0,
            "shared": [{"ngram": eligible[i], "z": round(float(z_all[i]), 2), "reference_count": int(y_t[i]),
                        "candidate_count": int(cand_vec[i]), "control_count": int(bg_all[i])}
                       for i in shared[:evidence]]}


def _z(y_t, n_t, y_b, n_b, vocab, alpha0):
    """The log-odds z-scores of :func:`log_odds_z`, on arrays."""
    if alpha0 is None:
        alpha0 = max(1.0, ALPHA_SHARE * (n_t + n_b))
    pi = (y_t + y_b + 0.01) / (n_t + n_b + 0.01 * (vocab + len(y_b)))
    a = alpha0 * pi
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.log((y_t + a) / (n_t + alpha0 - y_t - a)) - np.log((y_b + a) / (n_b + alpha0 - y_b - a))
        return delta / np.sqrt(1.0 / (y_t + a) + 1.0 / (y_b + a))


class _Without(dict):
    """A read-only view of counts ``full`` less ``part`` (for :func:`log_odds_z`'s lookups)."""

    def __init__(self, full: Counter, part: Counter):
        super().__init__()
        self.full, self.part = full, part

    def get(self, key, default=0):
        return self.full.get(key, 0) - self.part.get(key, 0)

    def __len__(self):
        return len(self.full)

    def values(self):  # pragma: no cover - callers pass n_background instead
        raise TypeError("pass n_background")
