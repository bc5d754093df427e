"""Estimates with confidence intervals, resampling prompts as the unit.

Samples within one prompt are not independent, so every interval here comes from a cluster
bootstrap over prompts (the caller first averages samples within each prompt, leaving one
number per prompt), or from an exact interval where one exists (Wilson for proportions).

Results are frozen dataclasses in the style of ``scipy.stats``: an :class:`Estimate` carries
its point estimate, interval, standard error, level, method, number of prompts and resamples,
and the seed that reproduces it. Degenerate data (fewer than two prompts, no variation) never
raises and never yields a falsely narrow interval: it warns with
:class:`DegenerateDataWarning` and returns NaN bounds.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ConfidenceInterval",
    "DegenerateDataWarning",
    "Estimate",
    "bootstrap_mean",
    "paired_excess",
    "wilson_interval",
]

_METHODS = ("auto", "BCa", "percentile", "basic")
_METHOD_NAMES = {
    "BCa": "BCa cluster bootstrap over prompts",
    "percentile": "percentile cluster bootstrap over prompts",
    "basic": "basic cluster bootstrap over prompts",
}


class DegenerateDataWarning(RuntimeWarning):
    """The data cannot support an interval (too few prompts, or no variation at all)."""


class ConfidenceInterval(NamedTuple):
    low: float
    high: float


@dataclass(frozen=True)
class Estimate:
    """A point estimate with the interval and everything needed to reproduce it."""

    estimate: float
    confidence_interval: ConfidenceInterval
    standard_error: float
    confidence_level: float
    method: str
    n_prompts: int
    n_resamples: int
    seed: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (NaN becomes None), the shape report.json uses for an estimate."""
        return {
            "estimate": _json_float(self.estimate),
            "ci_low": _json_float(self.confidence_interval.low),
            "ci_high": _json_float(self.confidence_interval.high),
            "standard_error": _json_float(self.standard_error),
            "confidence_level": float(self.confidence_level),
            "method": self.method,
            "n_prompts": int(self.n_prompts),
            "n_resamples": int(self.n_resamples),
            "seed": None if self.seed is None else int(self.seed),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Estimate:
        """Inverse of :meth:`to_dict` (None becomes NaN)."""
        return cls(
            estimate=_nan_float(d["estimate"]),
            confidence_interval=ConfidenceInterval(_nan_float(d["ci_low"]), _nan_float(d["ci_high"])),
            standard_error=_nan_float(d["standard_error"]),
            confidence_level=float(d["confidence_level"]),
            method=str(d["method"]),
            n_prompts=int(d["n_prompts"]),
            n_resamples=int(d["n_resamples"]),
            seed=None if d.get("seed") is None else int(d["seed"]),
        )


def bootstrap_mean(
    values,
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 9999,
    method: str = "auto",
    rng: int | np.random.Generator | None = None,
) -> Estimate:
    """Mean of one value per prompt, with a cluster-bootstrap interval over prompts.

    NaN entries (prompts with no usable score) are dropped; ``n_prompts`` counts the rest.
    ``method`` is ``"auto"`` (BCa, falling back to percentile where BCa is undefined or
    unstable), or one of scipy's ``"BCa"``, ``"percentile"``, ``"basic"``; the method
    actually used is written into the result. ``rng`` is an int seed or a Generator; with
    None a fresh seed is drawn and recorded so that the result can still be reproduced.
    """
    _check_options(confidence_level, n_resamples, method)
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"values must be one number per prompt (1-D), got shape {x.shape}")
    x = x[~np.isnan(x)]
    seed, gen = _resolve_rng(rng)
    n = x.size
    mean = float(x.mean()) if n else math.nan
    name = _METHOD_NAMES["BCa" if method == "auto" else method]

    def degenerate(why: str) -> Estimate:
        warnings.warn(f"{why}; the confidence interval is undefined (NaN)", DegenerateDataWarning, stacklevel=3)
        return Estimate(mean, ConfidenceInterval(math.nan, math.nan), math.nan, confidence_level, name, n, n_resamples, seed)

    if n < 2:
        return degenerate(f"only {n} prompt(s) with a value")
    if np.ptp(x) == 0 or not np.isfinite(mean):
        return degenerate(f"all {n} prompts have the same value" if np.isfinite(mean) else "values are not finite")

    first = "BCa" if method == "auto" else method
    res, ok = _scipy_bootstrap(x, first, confidence_level, n_resamples, gen)
    used = first
    if method == "auto" and not ok:
        # Reuse the same resamples: only the interval construction changes.
        res, ok = _scipy_bootstrap(x, "percentile", confidence_level, 0, gen, previous=res)
        used = "percentile"
    if not ok:
        return degenerate(f"the {used} bootstrap interval is undefined for these {n} prompts")
    ci = res.confidence_interval
    return Estimate(
        estimate=mean,
        confidence_interval=ConfidenceInterval(float(ci.low), float(ci.high)),
        standard_error=float(res.standard_error),
        confidence_level=float(confidence_level),
        method=_METHOD_NAMES[used],
        n_prompts=n,
        n_resamples=int(n_resamples),
        seed=seed,
    )


def paired_excess(
    similarity,
    baseline,
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 9999,
    method: str = "auto",
    rng: int | np.random.Generator | None = None,
) -> Estimate:
    """Excess of similarity over a baseline, paired by prompt.

    ``similarity`` has one value per prompt; ``baseline`` has one per prompt, or one per
    prompt and control (shape ``(n_prompts, n_controls)``), then averaged over the controls
    present for that prompt. Pairing by prompt removes the prompt's own difficulty from the
    interval; a prompt missing either side is dropped.
    """
    s = np.asarray(similarity, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"similarity must have shape (n_prompts,), got {s.shape}")
    if b.ndim not in (1, 2) or b.shape[0] != s.shape[0]:
        raise ValueError(
            f"baseline must have shape ({s.shape[0]},) or ({s.shape[0]}, n_controls), got {b.shape}"
        )
    if b.ndim == 2:
        if b.shape[1] == 0:
            b = np.full(s.shape, math.nan)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows -> NaN, dropped below
                b = np.nanmean(b, axis=1)
    return bootstrap_mean(s - b, confidence_level=confidence_level, n_resamples=n_resamples, method=method, rng=rng)


def wilson_interval(successes: int, n: int, *, confidence_level: float = 0.95) -> Estimate:
    """A proportion with its Wilson score interval (exact enough, no resampling).

    The trials are assumed independent, so pass counts over prompts (one trial per prompt),
    not over samples within prompts.
    """
    _check_options(confidence_level, 1, "auto")
    from statsmodels.stats.proportion import proportion_confint

    successes, n = int(successes), int(n)
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    name = "Wilson score interval"
    if n == 0:
        warnings.warn("no trials; the proportion and its interval are undefined (NaN)", DegenerateDataWarning, stacklevel=2)
        return Estimate(math.nan, ConfidenceInterval(math.nan, math.nan), math.nan, confidence_level, name, 0, 0, None)
    p = successes / n
    low, high = proportion_confint(successes, n, alpha=1 - confidence_level, method="wilson")
    return Estimate(
        estimate=p,
        confidence_interval=ConfidenceInterval(float(low), float(high)),
        standard_error=math.sqrt(p * (1 - p) / n),
        confidence_level=float(confidence_level),
        method=name,
        n_prompts=n,
        n_resamples=0,
        seed=None,
    )


# ---------------------------------------------------------------------------------------------


def _scipy_bootstrap(x, method, confidence_level, n_resamples, gen, previous=None):
    """Run scipy's vectorised bootstrap; report whether the interval is usable."""
    import scipy.stats  # here, not at the top: reading Estimates should not cost scipy's import

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = scipy.stats.bootstrap(
            (x,),
            np.mean,
            n_resamples=n_resamples,
            vectorized=True,
            axis=-1,
            confidence_level=confidence_level,
            method=method,
            bootstrap_result=previous,
            rng=gen,
        )
    degenerate = any(issubclass(w.category, scipy.stats.DegenerateDataWarning) for w in caught)
    for w in caught:  # pass on anything we did not expect
        if not issubclass(w.category, scipy.stats.DegenerateDataWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    ci = res.confidence_interval
    ok = not degenerate and np.isfinite(ci.low) and np.isfinite(ci.high)
    return res, bool(ok)


def _resolve_rng(rng) -> tuple[int | None, np.random.Generator]:
    """Seed to record and Generator to use. A Generator's seed is unknown, so None."""
    if isinstance(rng, np.random.Generator):
        return None, rng
    if rng is None:
        rng = int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (int, np.integer)):
        raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")
    return int(rng), np.random.default_rng(int(rng))


def _check_options(confidence_level, n_resamples, method) -> None:
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must lie strictly between 0 and 1, got {confidence_level}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")


def _json_float(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _nan_float(v) -> float:
    return math.nan if v is None else float(v)
