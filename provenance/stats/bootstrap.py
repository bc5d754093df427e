"""The vectorised cluster bootstrap over prompts, shared by every estimate of an analysis.

The unit of resampling is the prompt: samples within a prompt are not independent, so each
battery is first reduced to one row per prompt and one column per quantity (a pair's
similarity, a baseline, a paired difference, ...). A bootstrap replicate is a vector of
multinomial counts over the prompts; the replicate means of every column are then one matrix
product, ``counts @ values / counts @ present`` (missing values are simply not counted).

Every statistic is a smooth function of column means (a mean, a difference, a ratio, a
weighted sum across batteries), evaluated on the full data, on the replicates and on the
leave-one-prompt-out (jackknife) means. All statistics of one analysis use the same
replicates: a combined score across batteries is computed inside each replicate, and
batteries that ask the same prompts (the same text) draw those prompts together.

Intervals
    BCa (bias-corrected and accelerated, Efron 1987), with the acceleration from the
    jackknife, where it behaves; the percentile interval where it does not (the bias
    correction or acceleration is undefined, or the adjusted levels run off the ends of the
    replicates). Both bootstrap intervals are too narrow with few prompts: they use the
    plug-in variance (divisor n) and normal rather than t quantiles. So the nominal tail
    level is first *expanded* (Hesterberg 2015, "What teachers should know about the
    bootstrap"): z is replaced by sqrt(n / (n - 1)) t_{n-1}, which matters below ~50
    prompts and vanishes as n grows. ``benchmarks/coverage.py`` measures the coverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from .estimate import ConfidenceInterval, Estimate, nan_estimate, warn_degenerate

__all__ = ["Block", "Resampler", "METHODS", "bootstrap_statistic", "check_options", "method_name", "resolve_rng"]

METHODS = ("auto", "BCa", "percentile")
#: how small samples are handled: "expand" (default) or "none" (the textbook intervals)
SMALL_SAMPLE = ("expand", "none")


def method_name(kind: str, expanded: bool = True, between: bool = False) -> str:
    """The method as written into an Estimate, e.g. 'BCa cluster bootstrap over prompts'."""
    base = f"{kind} cluster bootstrap" + (" with the spread between models" if between else "") + " over prompts"
    return f"expanded {base}" if expanded else base


def resolve_rng(rng) -> tuple[int | None, np.random.Generator]:
    """Seed to record and Generator to use. A Generator's seed is unknown, so None; with None
    a fresh seed is drawn and recorded so that the result can still be reproduced."""
    if isinstance(rng, np.random.Generator):
        return None, rng
    if rng is None:
        rng = int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (int, np.integer)):
        raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")
    return int(rng), np.random.default_rng(int(rng))


def check_options(confidence_level: float, n_resamples: int, method: str = "auto",
                  small_sample: str = "expand") -> None:
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must lie strictly between 0 and 1, got {confidence_level}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if small_sample not in SMALL_SAMPLE:
        raise ValueError(f"small_sample must be one of {', '.join(SMALL_SAMPLE)}, got {small_sample!r}")


#: counts drawn per chunk (resamples x prompts), so a replicate matrix is never held whole
CHUNK_CELLS = 2**22


def multinomial_chunks(n: int, n_resamples: int, gen: np.random.Generator) -> Iterator[np.ndarray]:
    """(rows, n) counts of each of n clusters in resamples of size n, a chunk of resamples at
    a time (at most :data:`CHUNK_CELLS` cells, int64). The draws are those of one
    ``gen.integers`` call for all ``n_resamples`` rows, so the replicates do not depend on the
    chunk size; the integer type is chosen from the whole (n_resamples x n) draw, as it was
    when the matrix was drawn at once."""
    if n == 0:
        yield np.zeros((n_resamples, 0), dtype=np.int64)
        return
    dtype = np.int32 if n_resamples * n < 2**31 else np.int64
    step = max(1, CHUNK_CELLS // n)
    for start in range(0, n_resamples, step):
        rows = min(step, n_resamples - start)
        idx = gen.integers(0, n, size=(rows, n), dtype=dtype)
        idx += (np.arange(rows, dtype=dtype) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n)


def multinomial_counts(n: int, n_resamples: int, gen: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) counts of each of n clusters in a resample of size n (as float64);
    the same draws as :func:`multinomial_chunks`, held whole (for small uses and tests)."""
    return np.vstack(list(multinomial_chunks(n, n_resamples, gen))).astype(float)


class Resampler:
    """The replicates of one analysis: multinomial counts over each battery's prompts.

    ``prompt_keys`` maps a block (battery) name to the keys of its rows. Blocks whose keys
    overlap are resampled together (one draw over the union of their keys), so a prompt asked
    by two batteries is in or out of a replicate for both; other blocks draw independently.
    Draws happen in sorted block order, so one seed gives the same replicates every time.

    The counts are not kept: the generator's state before each group's draw is, and
    :meth:`block` draws them again chunk by chunk (:func:`multinomial_chunks`), so memory
    stays at one chunk however many prompts and resamples there are. ``gen`` is left where
    one draw of every group would leave it.
    """

    def __init__(self, prompt_keys: Mapping[str, Sequence[str]], n_resamples: int, rng=None):
        self.seed, gen = resolve_rng(rng)
        self.n_resamples = int(n_resamples)
        names = sorted(prompt_keys)
        keysets = {b: list(prompt_keys[b]) for b in names}
        # union-find over blocks that share a key
        parent = {b: b for b in names}

        def find(b):
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            return b

        owner: dict[str, str] = {}
        for b in names:
            for k in keysets[b]:
                if k in owner:
                    parent[find(b)] = find(owner[k])
                else:
                    owner[k] = b
        groups: dict[str, list[str]] = {}
        for b in names:
            groups.setdefault(find(b), []).append(b)
        self.groups = sorted(groups.values())
        # block -> (generator state before its group's draw, size of the union, its columns)
        self._draws: dict[str, tuple[dict, int, np.ndarray]] = {}
        for members in self.groups:
            union = sorted({k for b in members for k in keysets[b]})
            pos = {k: i for i, k in enumerate(union)}
            state = gen.bit_generator.state
            for _ in multinomial_chunks(len(union), self.n_resamples, gen):
                pass  # advance the generator past this group's draw
            for b in members:
                self._draws[b] = (state, len(union), np.array([pos[k] for k in keysets[b]], dtype=np.int64))
        self.gen = gen

    def chunks(self, block: str) -> Iterator[np.ndarray]:
        """The counts of ``block``'s rows, a chunk of replicates at a time."""
        state, n, cols = self._draws[block]
        gen = np.random.Generator(type(self.gen.bit_generator)())
        gen.bit_generator.state = state
        for c in multinomial_chunks(n, self.n_resamples, gen):
            yield c[:, cols]

    @property
    def counts(self) -> dict[str, np.ndarray]:
        """Every block's (n_resamples x rows) counts, held whole: for small uses and tests."""
        return {b: np.vstack(list(self.chunks(b))).astype(float) for b in self._draws}

    def block(self, name: str, values: np.ndarray) -> "Block":
        """The :class:`Block` of ``values``, the rows of block ``name``."""
        return Block(values, self.chunks(name))


class Block:
    """One battery's (prompts x columns) values: full-sample, replicate and jackknife means.

    ``values`` is (n_prompts, n_columns) with NaN where a value is missing; a column's mean
    counts only its present values, in the data and in every replicate. ``counts`` is the
    (n_resamples x n_prompts) replicate counts, or an iterable of chunks of its rows.
    """

    def __init__(self, values: np.ndarray, counts: np.ndarray | Iterable[np.ndarray]):
        x = np.asarray(values, dtype=float)
        chunks = [counts] if isinstance(counts, np.ndarray) else counts
        if x.ndim != 2:
            raise ValueError(f"values must be (n_prompts, n_columns), got {x.shape}")
        present = np.isfinite(x)
        xz = np.where(present, x, 0.0)
        pf = present.astype(float)
        self.values = x
        self.present = present
        self.n = x.shape[0]
        boot = []
        with np.errstate(invalid="ignore", divide="ignore"):
            s, c = xz.sum(axis=0), pf.sum(axis=0)
            self.full = s / c
            for cnt in chunks:
                if cnt.shape[1] != x.shape[0]:
                    raise ValueError(f"values must be (n_prompts, n_columns) with n_prompts={cnt.shape[1]}, "
                                     f"got {x.shape}")
                cnt = cnt.astype(float, copy=False)
                boot.append((cnt @ xz) / (cnt @ pf))
            self.boot = np.vstack(boot) if boot else np.zeros((0, x.shape[1]))
            self.jack = (s - xz) / (c - pf)


@dataclass(frozen=True)
class _Fail:
    why: str


def bootstrap_statistic(
    stat: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    blocks: Mapping[str, Block],
    uses: Mapping[str, Sequence[int]],
    *,
    confidence_level: float,
    n_resamples: int,
    seed: int | None,
    method: str = "auto",
    small_sample: str = "expand",
    warn: bool = True,
    between: tuple[float, float] | None = None,
) -> Estimate:
    """Estimate and interval of ``stat``, a function of column means.

    ``stat`` receives {block name: means} where means is (n_columns,) for the data,
    (n_resamples, n_columns) for the replicates, or (n_rows, n_columns) for the jackknife of
    one block (the other blocks then at their full-data means), and must broadcast. ``uses``
    names the columns it reads in each block: the rows where all of them are present are the
    prompts it rests on. Degenerate cases warn and give a NaN interval.

    ``between`` = (variance, degrees of freedom) of a further error independent of the
    prompts (the spread between models, see :mod:`provenance.stats.excess`). Each side of
    the prompt interval is then widened: its half-width h becomes t_nu sqrt((h / t_{n-1})^2
    + variance), nu by Welch-Satterthwaite, and the standard error grows to match.
    """
    used = {b: list(cols) for b, cols in uses.items() if cols}
    rows = {b: blocks[b].present[:, used[b]].all(axis=1) for b in used}
    n_prompts = int(sum(r.sum() for r in rows.values()))
    full = {b: blk.full for b, blk in blocks.items()}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        theta = float(np.asarray(stat(full)))
    expanded = small_sample == "expand"
    first = "percentile" if method == "percentile" else "BCa"

    def fail(why: str) -> Estimate:
        if warn:
            warn_degenerate(why, stacklevel=4)
        return nan_estimate(theta, confidence_level=confidence_level, method=method_name(first, expanded),
                            n_prompts=n_prompts, n_resamples=n_resamples, seed=seed)

    small = [b for b in used if rows[b].sum() < 2]
    if not used or small:
        return fail(f"only {n_prompts} prompt(s) with a value" if len(used) <= 1 else
                    f"block(s) {', '.join(small)} have fewer than 2 prompts with a value")
    if not math.isfinite(theta):
        return fail("the estimate is not finite (no usable values, or a zero denominator)")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        boot = np.asarray(stat({b: blk.boot for b, blk in blocks.items()}), dtype=float)
        jacks = []
        for b in used:
            jk = dict(full)
            jk[b] = blocks[b].jack[rows[b]]
            jacks.append(np.asarray(stat(jk), dtype=float).reshape(-1))
    ok = np.isfinite(boot)
    if ok.mean() < 0.99:
        return fail(f"{(~ok).sum()} of {boot.size} bootstrap replicates are undefined (too few prompts with a value)")
    boot = boot[ok]
    if np.ptp(boot) <= 1e-12 * max(1.0, abs(theta)):
        return fail(f"no variation across the {n_prompts} prompts")
    n_eff = _effective_n(jacks)
    res = _interval(theta, boot, jacks, n_eff, confidence_level, method, expanded)
    if isinstance(res, _Fail):
        return fail(res.why)
    low, high, kind = res
    se = float(boot.std(ddof=1))
    widened = between is not None and between[0] > 0 and math.isfinite(between[0])
    if widened:
        low, high, se = _widen(theta, low, high, se, n_eff, between, confidence_level)
    return Estimate(theta, ConfidenceInterval(float(low), float(high)), se, float(confidence_level),
                    method_name(kind, expanded, widened), n_prompts, int(n_resamples), seed)


def _widen(theta, low, high, se, n_eff, between, confidence_level):
    """Combine the prompt interval with an independent error of known variance (see
    :func:`bootstrap_statistic`)."""
    var_m, df_m = between
    q = 1 - (1 - confidence_level) / 2
    df_p = max(n_eff - 1, 1.0)
    t_p = special.stdtrit(df_p, q)
    out = []
    for h in (theta - low, high - theta):
        var_p = (h / t_p) ** 2
        nu = (var_p + var_m) ** 2 / (var_p**2 / df_p + var_m**2 / max(df_m, 1e-9))
        out.append(special.stdtrit(max(nu, 1.0), q) * math.sqrt(var_p + var_m))
    corr = n_eff / (n_eff - 1) if n_eff > 1 else 1.0
    return theta - out[0], theta + out[1], math.sqrt(se**2 * corr + var_m)


def _effective_n(jacks: list[np.ndarray]) -> float:
    """Prompts behind the estimate, for the small-sample expansion. One block: its prompts.
    Several: the Welch-Satterthwaite degrees of freedom of the sum of their jackknife
    variances, plus one (so a combination dominated by one small battery counts as small)."""
    if len(jacks) == 1:
        return float(len(jacks[0]))
    parts = []
    for j in jacks:
        n = len(j)
        if n < 2 or not np.all(np.isfinite(j)):
            continue
        parts.append(((n - 1) / n * np.sum((j - j.mean()) ** 2), n))
    total = sum(v for v, _ in parts)
    if total <= 0:
        return float(sum(n for _, n in parts))
    df = total**2 / sum(v**2 / (n - 1) for v, n in parts if v > 0)
    return float(df + 1)


def _tail_z(confidence_level: float, n_eff: float, expanded: bool) -> float:
    """The z of the upper tail: normal, or expanded to sqrt(n/(n-1)) t_{n-1} for small n."""
    q = 1 - (1 - confidence_level) / 2
    if not expanded or not math.isfinite(n_eff) or n_eff > 1e6:
        return float(special.ndtri(q))
    n = max(n_eff, 2.0)
    return float(math.sqrt(n / (n - 1)) * special.stdtrit(n - 1, q))


def _interval(theta, boot, jacks, n_eff, confidence_level, method, expanded):
    z = _tail_z(confidence_level, n_eff, expanded)
    b = boot.size
    if method in ("auto", "BCa"):
        res = _bca(theta, boot, jacks, z)
        if not isinstance(res, _Fail):
            return (*res, "BCa")
        if method == "BCa":
            return res
    a1, a2 = special.ndtr(-z), special.ndtr(z)
    if a1 < 0.5 / b:
        return _Fail(f"{b} resamples are too few for a {confidence_level:g} interval")
    low, high = np.quantile(boot, [a1, a2])
    return low, high, "percentile"


def _bca(theta, boot, jacks, z):
    b = boot.size
    below = np.mean(boot < theta) + 0.5 * np.mean(boot == theta)
    if not 0 < below < 1:
        return _Fail("the estimate lies outside its bootstrap distribution (BCa bias correction undefined)")
    z0 = special.ndtri(below)
    num = den = 0.0
    for j in jacks:
        d = j.mean() - j
        num += np.sum(d**3)
        den += np.sum(d**2)
    if den <= 0 or not math.isfinite(num):
        return _Fail("the jackknife shows no variation (BCa acceleration undefined)")
    a = num / (6.0 * den**1.5)
    levels = []
    for zz in (-z, z):
        w = z0 + zz
        if 1 - a * w <= 0:
            return _Fail("the BCa acceleration is too large for this interval")
        levels.append(special.ndtr(z0 + w / (1 - a * w)))
    lo, hi = levels
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 1.0 / b or hi > 1 - 1.0 / b or lo >= hi:
        return _Fail("the BCa levels fall outside the bootstrap replicates")
    low, high = np.quantile(boot, [lo, hi])
    return low, high
