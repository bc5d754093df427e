"""One-number estimates: a mean over prompts, a paired excess, a proportion.

These are the building blocks, on plain arrays with one value per prompt (the caller first
averages samples within each prompt). The analysis of a whole audit, with all estimates in
the same replicates, is :func:`provenance.stats.audit_statistics`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .bootstrap import Block, bootstrap_statistic, check_options, multinomial_chunks, resolve_rng
from .estimate import ConfidenceInterval, DegenerateDataWarning, Estimate

__all__ = ["bootstrap_mean", "paired_excess", "proportion_interval", "wilson_interval", "is_binary"]

PROPORTION_METHODS = {"wilson": "Wilson score interval", "beta": "Clopper-Pearson exact interval"}


def bootstrap_mean(
    values,
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 9999,
    method: str = "auto",
    small_sample: str = "expand",
    rng: int | np.random.Generator | None = None,
) -> Estimate:
    """Mean of one value per prompt, with a cluster-bootstrap interval over prompts.

    NaN entries (prompts with no usable score) are dropped; ``n_prompts`` counts the rest.
    ``method`` is ``"auto"`` (BCa, falling back to percentile where BCa is undefined or
    unstable), ``"BCa"`` (no fallback: NaN where it fails) or ``"percentile"``; the method
    actually used is written into the result. ``small_sample="expand"`` widens the tail
    level for few prompts (see :mod:`provenance.stats.bootstrap`); ``"none"`` gives the
    textbook interval. ``rng`` is an int seed or a Generator; with None a fresh seed is drawn
    and recorded so that the result can still be reproduced.
    """
    check_options(confidence_level, n_resamples, method, small_sample)
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"values must be one number per prompt (1-D), got shape {x.shape}")
    x = x[~np.isnan(x)]
    seed, gen = resolve_rng(rng)
    block = Block(x[:, None], multinomial_chunks(x.size, int(n_resamples), gen))
    return bootstrap_statistic(lambda m: m["x"][..., 0], {"x": block}, {"x": [0]}, confidence_level=confidence_level,
                               n_resamples=int(n_resamples), seed=seed, method=method, small_sample=small_sample)


def paired_excess(
    similarity,
    baseline,
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 9999,
    method: str = "auto",
    small_sample: str = "expand",
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
        b = row_mean(b)
    return bootstrap_mean(s - b, confidence_level=confidence_level, n_resamples=n_resamples, method=method,
                          small_sample=small_sample, rng=rng)


def row_mean(b: np.ndarray) -> np.ndarray:
    """Mean of each row over its present (non-NaN) entries; NaN where a row has none."""
    b = np.asarray(b, dtype=float)
    if b.shape[1] == 0:
        return np.full(b.shape[0], math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(b, axis=1)


def is_binary(values) -> bool:
    """True when every present value is 0 or 1 (then a mean over prompts is a proportion)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    return bool(x.size) and bool(np.all((x == 0) | (x == 1)))


def proportion_interval(successes: int, n: int, *, confidence_level: float = 0.95,
                        method: str = "wilson") -> Estimate:
    """A proportion with an exact-style interval: ``"wilson"`` (score interval, close to
    nominal coverage) or ``"beta"`` (Clopper-Pearson, never below nominal), via statsmodels.

    The trials are assumed independent, so pass counts over prompts (one trial per prompt),
    not over samples within prompts. No trials: a warning and NaN.
    """
    check_options(confidence_level, 1)
    if method not in PROPORTION_METHODS:
        raise ValueError(f"method must be one of {', '.join(PROPORTION_METHODS)}, got {method!r}")
    from statsmodels.stats.proportion import proportion_confint

    successes, n = int(successes), int(n)
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    name = PROPORTION_METHODS[method]
    if n == 0:
        warnings.warn("no trials; the proportion and its interval are undefined (NaN)", DegenerateDataWarning, stacklevel=2)
        return Estimate(math.nan, ConfidenceInterval(math.nan, math.nan), math.nan, confidence_level, name, 0, 0, None)
    p = successes / n
    low, high = proportion_confint(successes, n, alpha=1 - confidence_level, method=method)
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


def wilson_interval(successes: int, n: int, *, confidence_level: float = 0.95) -> Estimate:
    """A proportion with its Wilson score interval (see :func:`proportion_interval`)."""
    return proportion_interval(successes, n, confidence_level=confidence_level, method="wilson")
