"""An audit's estimates: similarity, baselines, excess, ceiling, normalised score, the
combination across batteries and the permutation tests, all in one set of replicates.

Input is one :class:`ScoreTable` per battery: per-prompt similarity of any two models (and a
model's ceiling, its similarity to its own fresh samples). For a candidate C, references R
and controls K (see ``CONVENTIONS.md``, "Statistics"), per battery and reference:

    similarity    s(C, R), mean over prompts
    baseline      reference side  b_R = mean_K s(K, R)
                  candidate side  b_C = mean_K s(C, K)
                  both            (b_R + b_C) / 2
    excess        s(C, R) - baseline, paired by prompt (``baseline`` picks the side that leads)
    rank excess   per prompt, the share of the baseline's similarities that s(C, R) exceeds
                  (ties count half), minus 1/2; mean over prompts. 0 when C is like the
                  controls, up to +1/2 when C is closer to R than every control on every
                  prompt. Unit-free, so batteries with different similarity scales combine.
    ceiling       c(R), R against its own fresh samples
    normalised    (s - b) / (c - b), a ratio of means, only where c - b is clearly positive
                  (the lower end of its interval above zero)
    combined      per reference, sum over batteries of w_b * excess_b on one scale (``scale``:
                  similarity or rank), explicit weights, computed inside each replicate
    test          one-sided permutation p-value for "C is no closer to R than the controls":
                  on each prompt the candidate's label is swapped with that of a random one of
                  {C, K_1..K_k} (with one control this is the sign-flip test); Holm-adjusted
                  across references. Reported beside the intervals, never as a verdict.

Every estimate is a cluster bootstrap over prompts (BCa where it behaves, else percentile,
both with the small-sample expansion; the method is written into each one), except a
similarity, baseline or ceiling that is a proportion (every per-prompt value 0 or 1), which
gets a Wilson interval. Nothing here calls a model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .basic import is_binary, proportion_interval
from .bootstrap import CHUNK_CELLS, Resampler, bootstrap_statistic, check_options, method_name
from .estimate import DegenerateDataWarning, Estimate, NullTest

__all__ = ["AuditStatistics", "BASELINES", "CombinedResult", "ControlResult", "ReferenceResult", "SCALES",
           "ScoreTable", "audit_statistics", "between_models", "contrasts", "holm"]

#: baseline sides and how reports describe them
BASELINES = {
    "reference": "reference side: b(R) = mean over controls K of s(K, R), on the same prompts",
    "candidate": "candidate side: b(C) = mean over controls K of s(C, K), on the same prompts",
    "both": "both sides: (b(R) + b(C)) / 2, the mean of the reference-side and candidate-side baselines, "
            "on the same prompts",
}
#: scales of an excess, and how reports describe them
SCALES = {
    "similarity": "similarity scale: similarity minus baseline similarity, mean over prompts",
    "rank": "rank scale: per prompt, the share of baseline similarities that the candidate's similarity to the "
            "reference exceeds (ties half), minus 1/2; mean over prompts",
}
#: the side and scale that lead when none is asked for (chosen by measurement on models of
#: known lineage: see benchmarks/README.md)
DEFAULT_BASELINE = "both"
DEFAULT_SCALE = "similarity"
TEST_METHOD = ("permutation over prompts: on each prompt the candidate's label is swapped with that of a random "
               "one of the candidate and the controls; beside it, the candidate's rank among all k + 1 models "
               "(p_value_models, relabelling whole models)")
ALTERNATIVE = "candidate closer to the reference than the controls"


class ScoreTable:
    """Per-prompt pair scores of one battery, computed on demand and cached.

    ``prompt_keys`` identify the prompts (rows); two batteries with a key in common are
    resampled together. ``pair(a, b)`` returns one similarity per prompt (NaN where
    undefined) and must be symmetric; ``self_pair(a)`` returns the ceiling per prompt.
    Either may be given as ready arrays through ``pairs``/``selfs`` instead.
    """

    def __init__(self, battery: str, prompt_keys: Sequence[str], *,
                 pair: Callable[[str, str], np.ndarray] | None = None,
                 self_pair: Callable[[str], np.ndarray] | None = None,
                 pairs: Mapping[tuple[str, str], Any] | None = None,
                 selfs: Mapping[str, Any] | None = None):
        self.battery = battery
        self.prompt_keys = [str(k) for k in prompt_keys]
        self.n = len(self.prompt_keys)
        self._pair, self._self = pair, self_pair
        self._pairs: dict[tuple[str, str], np.ndarray] = {}
        self._selfs: dict[str, np.ndarray] = {}
        for (a, b), v in (pairs or {}).items():
            self._pairs[tuple(sorted((a, b)))] = self._check(v, f"pair ({a}, {b})")
        for a, v in (selfs or {}).items():
            self._selfs[a] = self._check(v, f"ceiling of {a}")

    def _check(self, v, what) -> np.ndarray:
        x = np.asarray(v, dtype=float).reshape(-1)
        if x.shape != (self.n,):
            raise ValueError(f"{self.battery}: {what} has {x.size} values for {self.n} prompts")
        return x

    def s(self, a: str, b: str) -> np.ndarray:
        key = tuple(sorted((a, b)))
        if key not in self._pairs:
            if self._pair is None:
                raise KeyError(f"{self.battery}: no scores for the pair {a!r}, {b!r}")
            self._pairs[key] = self._check(self._pair(a, b), f"pair ({a}, {b})")
        return self._pairs[key]

    def ceiling(self, a: str) -> np.ndarray:
        if a not in self._selfs:
            self._selfs[a] = (self._check(self._self(a), f"ceiling of {a}") if self._self is not None
                              else np.full(self.n, math.nan))
        return self._selfs[a]


def _d(e) -> dict[str, Any] | None:
    return None if e is None else e.to_dict()


@dataclass(frozen=True)
class ControlResult:
    """A control treated as the candidate (leave-one-out: the other controls are its baseline)."""

    control: str
    similarity: Estimate | None
    excess: Estimate | None
    rank_excess: Estimate | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "similarity": _d(self.similarity), "excess": _d(self.excess),
                "rank_excess": _d(self.rank_excess)}


@dataclass(frozen=True)
class ReferenceResult:
    """One battery and one reference. ``baseline``, ``excess`` and ``rank_excess`` are those
    of the leading side; ``baselines``, ``excesses`` and ``rank_excesses`` hold every side."""

    battery: str
    reference: str
    n_prompts: int
    similarity: Estimate
    baseline: Estimate | None
    excess: Estimate | None
    rank_excess: Estimate | None
    ceiling: Estimate | None
    normalised: Estimate | None
    normalised_note: str | None
    test: NullTest | None
    baselines: dict[str, Estimate] = field(default_factory=dict)
    excesses: dict[str, Estimate] = field(default_factory=dict)
    rank_excesses: dict[str, Estimate] = field(default_factory=dict)
    controls: tuple[ControlResult, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "battery": self.battery, "reference": self.reference, "n_prompts": int(self.n_prompts),
            "similarity": self.similarity.to_dict(), "baseline": _d(self.baseline), "excess": _d(self.excess),
            "rank_excess": _d(self.rank_excess), "ceiling": _d(self.ceiling), "normalised": _d(self.normalised),
            "normalised_note": self.normalised_note, "test": _d(self.test),
            "baselines": {k: v.to_dict() for k, v in self.baselines.items()},
            "excesses": {k: v.to_dict() for k, v in self.excesses.items()},
            "rank_excesses": {k: v.to_dict() for k, v in self.rank_excesses.items()},
            "controls": [c.to_dict() for c in self.controls],
        }


@dataclass(frozen=True)
class CombinedResult:
    """A reference's excess combined over batteries (weighted sum, same replicates)."""

    reference: str
    scale: str
    weights: dict[str, float]
    excess: Estimate | None
    test: NullTest | None
    controls: tuple[ControlResult, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "scale": self.scale, "weights": dict(self.weights),
                "excess": _d(self.excess), "test": _d(self.test),
                "controls": [{"control": c.control,
                              "excess": _d(c.excess if self.scale == "similarity" else c.rank_excess)}
                             for c in self.controls]}


@dataclass(frozen=True)
class AuditStatistics:
    results: tuple[ReferenceResult, ...]
    combined: tuple[CombinedResult, ...]
    baseline: str
    scale: str
    weights: dict[str, float]
    confidence_level: float
    n_resamples: int
    seed: int | None
    method: str

    def result(self, battery: str, reference: str) -> ReferenceResult:
        return next(r for r in self.results if r.battery == battery and r.reference == reference)

    def combined_for(self, reference: str) -> CombinedResult:
        return next(c for c in self.combined if c.reference == reference)

    def describe(self) -> dict[str, Any]:
        """The report's ``statistics`` entries."""
        return {"confidence_level": self.confidence_level, "n_resamples": self.n_resamples,
                "seed": self.seed if self.seed is not None else 0, "method": self.method,
                "baseline": BASELINES[self.baseline], "baseline_side": self.baseline,
                "combined_scale": SCALES[self.scale], "weights": dict(self.weights),
                "test": TEST_METHOD + "; Holm-adjusted across references"}


class _Columns:
    """Builds one battery's (prompts x columns) matrix by name."""

    def __init__(self, n: int):
        self.n, self.arrays, self.index = n, [], {}

    def add(self, key, values) -> int:
        if key not in self.index:
            self.index[key] = len(self.arrays)
            self.arrays.append(np.asarray(values, dtype=float))
        return self.index[key]

    def get(self, key) -> np.ndarray:
        return self.arrays[self.index[key]]

    def matrix(self) -> np.ndarray:
        return np.column_stack(self.arrays) if self.arrays else np.zeros((self.n, 0))


def _heaviside(x: np.ndarray) -> np.ndarray:
    """1 where x > 0, 1/2 where x == 0, 0 below, NaN where x is NaN."""
    return np.where(np.isnan(x), np.nan, (x > 0) + 0.5 * (x == 0))


def _nanmean0(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 of the present values; NaN where none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=0) if a.shape[0] else np.full(a.shape[1:], np.nan)


def contrasts(t: ScoreTable, candidate: str, reference: str, controls: Sequence[str]) -> dict[tuple, np.ndarray]:
    """Per-prompt excess of each model of {C, K_1..K_k} taken as the candidate.

    Keys are (kind, scale, side) with kind ``"perm"`` (the candidate's label swapped with
    model j: the real candidate joins the controls, as the permutation test needs) or
    ``"loo"`` (model j against the other controls only, the real candidate left out, as the
    report's control rows show); scale ``"similarity"`` (s minus the mean baseline
    similarity) or ``"rank"`` (the share of baseline similarities that s exceeds, ties
    half, minus 1/2); side as in :data:`BASELINES`. Each value is (1 + k, n); row 0, the
    real candidate, is the same for both kinds.
    """
    pool = [candidate, *controls]
    m = len(pool)
    to_ref = np.vstack([t.s(x, reference) for x in pool])  # (m, n): s(M_j, R)
    mm = np.full((m, m, t.n), np.nan)  # s(M_j, M_i)
    for j in range(m):
        for i in range(j + 1, m):
            mm[j, i] = mm[i, j] = t.s(pool[j], pool[i])
    out: dict[tuple, np.ndarray] = {}
    for kind in ("perm", "loo"):
        rows = {key: [] for key in [(sc, sd) for sc in ("similarity", "rank") for sd in ("reference", "candidate")]}
        for j in range(m):
            S = [i for i in range(m) if i != j and (kind == "perm" or j == 0 or i != 0)]
            ref_others, cand_others = to_ref[S], mm[j, S]
            rows[("similarity", "reference")].append(to_ref[j] - _nanmean0(ref_others))
            rows[("similarity", "candidate")].append(to_ref[j] - _nanmean0(cand_others))
            rows[("rank", "reference")].append(_nanmean0(_heaviside(to_ref[j] - ref_others)) - 0.5)
            rows[("rank", "candidate")].append(_nanmean0(_heaviside(to_ref[j] - cand_others)) - 0.5)
        for (sc, sd), r in rows.items():
            out[(kind, sc, sd)] = np.vstack(r)
        for sc in ("similarity", "rank"):
            out[(kind, sc, "both")] = (out[(kind, sc, "reference")] + out[(kind, sc, "candidate")]) / 2
    return out


def audit_statistics(
    tables: Sequence[ScoreTable],
    candidate: str,
    references: Sequence[str],
    controls: Sequence[str],
    *,
    baseline: str = DEFAULT_BASELINE,
    scale: str = DEFAULT_SCALE,
    weights: Mapping[str, float] | str = "equal",
    confidence_level: float = 0.95,
    n_resamples: int = 9999,
    n_permutations: int | None = None,
    method: str = "auto",
    small_sample: str = "expand",
    rng: int | np.random.Generator | None = 0,
    loo_controls: bool = True,
    all_sides: bool = True,
    models_spread: bool = True,
    warn: bool = True,
) -> AuditStatistics:
    """All estimates of an audit (see the module docstring), one set of replicates.

    ``baseline`` is the side that leads (:data:`BASELINES`); ``scale`` that of the combined
    score (:data:`SCALES`). ``weights`` is ``"equal"`` (each battery 1/n_batteries) or
    {battery: weight}; weights are renormalised over the batteries that have an excess for a
    reference and reported as used. ``n_permutations`` defaults to ``n_resamples``; 0 skips
    the tests. ``loo_controls`` adds each control's own leave-one-out excess (needs at
    least two controls). ``all_sides=False`` estimates only the leading side (faster).
    ``models_spread`` widens every excess interval by the spread between models (see
    :func:`_between`); False gives intervals conditional on these very controls.
    """
    from .bootstrap import resolve_rng

    check_options(confidence_level, n_resamples, method, small_sample)
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    references, controls = list(references), list(controls)
    if candidate in references or candidate in controls or set(references) & set(controls):
        raise ValueError("a model can have only one role: candidate, reference or control")
    names = [t.battery for t in tables]
    if len(set(names)) != len(names):
        raise ValueError(f"battery names must be distinct, got {names}")
    w = _weights(weights, names)
    seed, gen = resolve_rng(rng)
    B = int(n_resamples)
    resampler = Resampler({t.battery: t.prompt_keys for t in tables}, B, gen)
    opts = dict(confidence_level=confidence_level, n_resamples=B, seed=seed, method=method,
                small_sample=small_sample, warn=warn)
    k = len(controls)
    sides = list(BASELINES)
    loo = loo_controls and k >= 2

    # 1. columns per battery
    cols: dict[str, _Columns] = {}
    con: dict[tuple[str, str], dict[tuple, np.ndarray]] = {}
    # (battery, scale, side, reference) -> columns of every control's own leave-one-out excess,
    # whose spread is the spread between independent models (see _between)
    nulls: dict[tuple, list[int]] = {}

    for t in tables:
        c = cols[t.battery] = _Columns(t.n)
        for ref in references:
            s_cr = c.get(("s", ref)) if ("s", ref) in c.index else t.s(candidate, ref)
            c.add(("s", ref), s_cr)
            c.add(("c", ref), t.ceiling(ref))
            if not k:
                continue
            cc = con[(t.battery, ref)] = contrasts(t, candidate, ref, controls)
            b_ref = _nanmean0(np.vstack([t.s(x, ref) for x in controls]))
            b_cand = _nanmean0(np.vstack([t.s(candidate, x) for x in controls]))
            for side in sides:
                b = {"reference": b_ref, "candidate": b_cand, "both": (b_ref + b_cand) / 2}[side]
                c.add(("b", side, ref), np.where(np.isfinite(s_cr), b, np.nan))
                for sc in SCALES:
                    c.add((sc, side, ref, 0), cc[("loo", sc, side)][0])
                    if k >= 2 and (all_sides or side == baseline):
                        nulls[(t.battery, sc, side, ref)] = [c.add((sc, side, ref, j), cc[("loo", sc, side)][j])
                                                             for j in range(1, k + 1)]
            for j, ctl in enumerate(controls, 1):
                c.add(("s", ref, ctl), t.s(ctl, ref))
            ceil, bl = t.ceiling(ref), c.get(("b", baseline, ref))
            ok = np.isfinite(ceil) & np.isfinite(s_cr) & np.isfinite(bl)
            c.add(("num", ref), np.where(ok, s_cr - bl, np.nan))
            c.add(("gap", ref), np.where(ok, ceil - bl, np.nan))
    blocks = {b: resampler.block(b, cols[b].matrix()) for b in names}

    def col(b, key):
        return cols[b].index[key]

    def mean_of(b, key, exact: bool = True) -> Estimate:
        j = col(b, key)
        x = cols[b].arrays[j]
        if exact and is_binary(x) and np.isfinite(x).sum() >= 2:
            ok = np.isfinite(x)
            return proportion_interval(int(x[ok].sum()), int(ok.sum()), confidence_level=confidence_level)
        between = None
        if models_spread and len(key) == 4 and (b, *key[:3]) in nulls:
            between = _between(blocks, [(b, 1.0, nulls[(b, *key[:3])])], k if key[3] == 0 else k - 1)
        return bootstrap_statistic(lambda m: m[b][..., j], blocks, {b: [j]}, between=between, **opts)

    # 2. per battery and reference
    results: list[ReferenceResult] = []
    for t in tables:
        b = t.battery
        for ref in references:
            sim = mean_of(b, ("s", ref))
            base = exc = rexc = norm = None
            baselines, excesses, rank_excesses, ctl_rows = {}, {}, {}, []
            ceiling = mean_of(b, ("c", ref)) if np.isfinite(cols[b].get(("c", ref))).any() else None
            note = "no controls, so no baseline" if not k else None
            if k:
                for side in (sides if all_sides else [baseline]):
                    baselines[side] = mean_of(b, ("b", side, ref))
                    excesses[side] = mean_of(b, ("similarity", side, ref, 0), exact=False)
                    rank_excesses[side] = mean_of(b, ("rank", side, ref, 0), exact=False)
                base, exc, rexc = baselines[baseline], excesses[baseline], rank_excesses[baseline]
                norm, note = _normalised(b, ref, blocks, col, cols, opts)
                for jj, ctl in enumerate(controls, 1):
                    e = re_ = None
                    if loo:
                        e = mean_of(b, ("similarity", baseline, ref, jj), exact=False)
                        re_ = mean_of(b, ("rank", baseline, ref, jj), exact=False)
                    ctl_rows.append(ControlResult(ctl, mean_of(b, ("s", ref, ctl)), e, re_))
            n_prompts = int(np.isfinite(cols[b].get(("s", ref))).sum())
            results.append(ReferenceResult(b, ref, n_prompts, sim, base, exc, rexc, ceiling, norm, note, None,
                                           baselines, excesses, rank_excesses, tuple(ctl_rows)))

    # 3. combined per reference, in the same replicates
    combined: list[CombinedResult] = []
    for ref in references:
        if not k:
            combined.append(CombinedResult(ref, scale, {}, None, None))
            continue
        have = [b for b in names if np.isfinite(cols[b].get((scale, baseline, ref, 0))).sum() >= 2]
        ww = _renormalise(w, have)
        spread = nulls if models_spread else None
        exc = _combined((scale, baseline, ref, 0), ww, blocks, col, opts, spread, k)
        ctl_rows = []
        if loo:
            for jj, ctl in enumerate(controls, 1):
                hv = [b for b in have if np.isfinite(cols[b].get((scale, baseline, ref, jj))).sum() >= 2]
                e = _combined((scale, baseline, ref, jj), _renormalise(w, hv), blocks, col, opts, spread, k - 1)
                ctl_rows.append(ControlResult(ctl, None, e if scale == "similarity" else None,
                                              e if scale == "rank" else None))
        combined.append(CombinedResult(ref, scale, ww, exc, None, tuple(ctl_rows)))

    # 4. permutation tests, Holm across references
    P = B if n_permutations is None else int(n_permutations)
    if k and P > 0:
        perm = _Permuter({t.battery: t.prompt_keys for t in tables}, k + 1, P, gen)

        def test(D, wts):
            return perm.pvalue(D, wts)

        by_battery: dict[str, list[int]] = {}
        for i, r in enumerate(results):
            by_battery.setdefault(r.battery, []).append(i)
        tests: dict[int, NullTest] = {}
        for idx in by_battery.values():
            raw = [test({results[i].battery: con[(results[i].battery, results[i].reference)][("perm", "similarity",
                                                                                             baseline)]},
                        {results[i].battery: 1.0}) for i in idx]
            for i, x, pa in zip(idx, raw, holm([x[1] for x in raw])):
                D = con[(results[i].battery, results[i].reference)][("perm", "similarity", baseline)]
                tests[i] = NullTest(x[0], x[1], pa, TEST_METHOD, ALTERNATIVE, x[2], P, seed,
                                    _model_rank_p({results[i].battery: D}, {results[i].battery: 1.0}))
        results = [replace(r, test=tests.get(i)) for i, r in enumerate(results)]
        raw = [test({b: con[(b, c.reference)][("perm", scale, baseline)] for b in c.weights}, c.weights)
               if c.excess is not None and c.weights else None for c in combined]
        adj = iter(holm([x[1] for x in raw if x is not None]))
        combined = [c if x is None else replace(c, test=NullTest(
            x[0], x[1], next(adj), TEST_METHOD, ALTERNATIVE, x[2], P, seed,
            _model_rank_p({b: con[(b, c.reference)][("perm", scale, baseline)] for b in c.weights}, c.weights)))
            for c, x in zip(combined, raw)]
    return AuditStatistics(tuple(results), tuple(combined), baseline, scale, w, float(confidence_level), B, seed,
                           f"{method_name('BCa')} where it behaves, else {method_name('percentile')}; "
                           f"Wilson score interval where a similarity is a proportion")


def _weights(weights, names: list[str]) -> dict[str, float]:
    if isinstance(weights, str):
        if weights != "equal":
            raise ValueError(f"weights must be 'equal' or a mapping battery -> weight, got {weights!r}")
        return {b: 1.0 / len(names) for b in names} if names else {}
    unknown = set(weights) - set(names)
    if unknown:
        raise ValueError(f"weights name unknown batteries: {', '.join(sorted(unknown))}")
    w = {b: float(weights.get(b, 0.0)) for b in names}
    if any(v < 0 or not math.isfinite(v) for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"weights must be non-negative and not all zero, got {dict(weights)}")
    total = sum(w.values())
    return {b: v / total for b, v in w.items()}


def _renormalise(w: dict[str, float], have: list[str]) -> dict[str, float]:
    total = sum(w[b] for b in have)
    return {b: w[b] / total for b in have if w[b] > 0} if total > 0 else {}


def _combined(key, ww, blocks, col, opts, nulls=None, k_baseline=0) -> Estimate | None:
    if not ww:
        return None
    idx = {b: col(b, key) for b in ww}

    def stat(m):
        return sum(wt * m[b][..., idx[b]] for b, wt in ww.items())

    between = None
    if nulls is not None and all((b, *key[:3]) in nulls for b in ww):
        between = _between(blocks, [(b, wt, nulls[(b, *key[:3])]) for b, wt in ww.items()], k_baseline)
    return bootstrap_statistic(stat, blocks, {b: [idx[b]] for b in ww}, between=between, **opts)


def between_models(table: ScoreTable, candidate: str, reference: str, controls: Sequence[str], *,
                   scale: str = DEFAULT_SCALE, baseline: str = DEFAULT_BASELINE, n_resamples: int = 999,
                   rng=0) -> tuple[float, float] | None:
    """(variance, degrees of freedom) of the spread between models in the candidate's excess
    on one battery (see :func:`_between`); None with fewer than two controls."""
    k = len(controls)
    if k < 2:
        return None
    cc = contrasts(table, candidate, reference, controls)[("loo", scale, baseline)]
    from .bootstrap import resolve_rng

    _, gen = resolve_rng(rng)
    block = Resampler({"b": table.prompt_keys}, n_resamples, gen).block("b", cc[1:].T)
    return _between({"b": block}, [("b", 1.0, list(range(k)))], k)


def _between(blocks, parts, k_baseline: int) -> tuple[float, float] | None:
    """(variance, degrees of freedom) of the spread between models in an excess.

    Each model has its own closeness to the reference (style, quality, shared habits) that
    no resampling of prompts sees, so independent models differ in their excess. The k
    controls show by how much: ``parts`` gives, per battery, its weight and the columns of
    every control's own leave-one-out excess e_j (against the other k - 1 controls). Their
    spread across controls, less the part that prompt noise explains (the spread of their
    bootstrap deviations), estimates it. With independent model effects u (variance
    sigma^2), e_j = (k / (k - 1)) (u_j - mean u), so sigma^2 = var_j(e_j) ((k - 1) / k)^2;
    an excess against k_b baseline controls carries u_C - mean u_K, variance
    sigma^2 (1 + 1 / k_b): the candidate's own u is unknown and counts as error, so that for
    a model of no relation to the reference the interval includes zero at the nominal rate.
    k - 1 degrees of freedom; None with fewer than two controls.
    """
    k = {len(idx) for _, _, idx in parts}
    if len(k) != 1:
        return None
    k = k.pop()
    if k < 2 or k_baseline < 1:
        return None
    with np.errstate(invalid="ignore"):
        full = sum(w * blocks[b].full[idx] for b, w, idx in parts)
        boot = sum(w * blocks[b].boot[:, idx] for b, w, idx in parts)
    if not np.all(np.isfinite(full)):
        return None
    boot = boot[np.all(np.isfinite(boot), axis=1)]
    if boot.shape[0] < 2:
        return None
    v_noise = float(np.mean(np.var(boot - full, axis=1, ddof=1)))
    spread = max(0.0, float(np.var(full, ddof=1)) - v_noise)
    sigma2 = spread * ((k - 1) / k) ** 2
    return sigma2 * (1 + 1 / k_baseline), float(k - 1)


def _normalised(b, ref, blocks, col, cols, opts):
    """(s - b) / (c - b) where c - b is clearly positive; else None and why."""
    jn, jg = col(b, ("num", ref)), col(b, ("gap", ref))
    n = int(np.isfinite(cols[b].arrays[jg]).sum())
    if n < 2:
        return None, "no ceiling: the reference has fewer than two samples per prompt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        gap = bootstrap_statistic(lambda m: m[b][..., jg], blocks, {b: [jg]}, **opts)
    if not gap.has_interval or gap.confidence_interval.low <= 0:
        lo = gap.confidence_interval.low
        return None, (f"not reported: ceiling minus baseline is {gap.estimate:.3f}"
                      + (f" (interval reaches down to {lo:.3f})" if math.isfinite(lo) else " (no interval)")
                      + ", not clearly positive")
    est = bootstrap_statistic(lambda m: m[b][..., jn] / m[b][..., jg], blocks, {b: [jn, jg]}, **opts)
    return est, f"ceiling minus baseline {gap.estimate:.3f} (interval {gap.confidence_interval.low:.3f} to " \
                f"{gap.confidence_interval.high:.3f})"


class _Permuter:
    """Relabels, per prompt, which of the k + 1 models {C, K_1..K_k} is the candidate.
    Batteries sharing a prompt (by key) use the same relabelling for it.

    The labels are those of one ``gen.integers(0, m, size=(n_permutations, n_keys))`` draw,
    drawn a chunk of permutations at a time and kept per battery in the smallest integer type
    (m is small), and p-values are computed a chunk at a time, so memory stays small at
    many prompts."""

    def __init__(self, prompt_keys: Mapping[str, Sequence[str]], m: int, n_permutations: int, gen):
        keys = sorted({k for ks in prompt_keys.values() for k in ks})
        pos = {k: i for i, k in enumerate(keys)}
        cols = {b: np.array([pos[k] for k in ks], dtype=np.int64) for b, ks in prompt_keys.items()}
        dtype = np.min_scalar_type(max(m - 1, 0))
        self.draws = {b: np.empty((n_permutations, len(c)), dtype=dtype) for b, c in cols.items()}
        step = max(1, CHUNK_CELLS // max(len(keys), 1))
        for start in range(0, n_permutations, step):
            draws = gen.integers(0, m, size=(min(step, n_permutations - start), len(keys)))
            for b, c in cols.items():
                self.draws[b][start:start + draws.shape[0]] = draws[:, c]
        self.n_permutations = n_permutations

    def pvalue(self, D: Mapping[str, np.ndarray], w: Mapping[str, float]) -> tuple[float, float, int]:
        """(statistic, p-value, prompts) of sum_b w_b mean_p D_b[label_p, p]."""
        obs, null, n = 0.0, 0.0, 0
        for b, wt in w.items():
            d = D[b]
            ok0 = np.isfinite(d[0])
            n += int(ok0.sum())
            obs += wt * np.nanmean(d[0]) if ok0.any() else math.nan
            step = max(1, CHUNK_CELLS // max(d.shape[1], 1))
            means = []
            cols = np.arange(d.shape[1])[None, :]
            for start in range(0, self.n_permutations, step):
                pick = d[self.draws[b][start:start + step], cols]  # (chunk, n)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    means.append(np.nanmean(pick, axis=1))
            null = null + wt * (np.concatenate(means) if means else np.zeros(0))
        if not math.isfinite(obs) or n < 1:
            return obs, math.nan, n
        null = np.asarray(null)
        null = null[np.isfinite(null)]
        p = (1 + np.sum(null >= obs - 1e-12 * max(1.0, abs(obs)))) / (1 + null.size)
        return float(obs), float(p), n


def _model_rank_p(D: Mapping[str, np.ndarray], w: Mapping[str, float]) -> float:
    """The candidate's rank among the k + 1 models by their excess, each in turn taken as the
    candidate (the others its controls): (1 + #{j >= 1: e_j >= e_0}) / (k + 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        e = sum(wt * np.nanmean(D[b], axis=1) for b, wt in w.items())
    if not np.all(np.isfinite(e)):
        return math.nan
    return float((1 + np.sum(e[1:] >= e[0] - 1e-12 * max(1.0, abs(e[0])))) / e.size)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m:
        order = idx[np.argsort(p[idx], kind="stable")]
        adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
        out[order] = adj
    return out.tolist()
