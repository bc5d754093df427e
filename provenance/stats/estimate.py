"""Result objects in the style of ``scipy.stats``: frozen dataclasses that carry everything
needed to read and to reproduce a number.

An :class:`Estimate` is a point estimate with its interval, standard error, level, method,
number of prompts and resamples, and the seed that reproduces it. A :class:`NullTest` is a
p-value for "the candidate is no closer to the reference than the controls are", reported
beside the intervals, never as a verdict. Degenerate data never raises and never yields a
falsely narrow interval: it warns with :class:`DegenerateDataWarning` and gives NaN.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["ConfidenceInterval", "DegenerateDataWarning", "Estimate", "NullTest", "nan_estimate", "warn_degenerate"]


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
            "estimate": json_float(self.estimate),
            "ci_low": json_float(self.confidence_interval.low),
            "ci_high": json_float(self.confidence_interval.high),
            "standard_error": json_float(self.standard_error),
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
            estimate=nan_float(d["estimate"]),
            confidence_interval=ConfidenceInterval(nan_float(d["ci_low"]), nan_float(d["ci_high"])),
            standard_error=nan_float(d["standard_error"]),
            confidence_level=float(d["confidence_level"]),
            method=str(d["method"]),
            n_prompts=int(d["n_prompts"]),
            n_resamples=int(d["n_resamples"]),
            seed=None if d.get("seed") is None else int(d["seed"]),
        )

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.confidence_interval.low) and math.isfinite(self.confidence_interval.high)


@dataclass(frozen=True)
class NullTest:
    """A one-sided test of "the candidate is no closer to the reference than the controls are".

    ``pvalue`` is the Monte Carlo permutation p-value, ``(1 + #{T* >= T}) / (1 + n_resamples)``,
    so never below ``1 / (1 + n_resamples)``; ``pvalue_holm`` is Holm-adjusted across the
    references of the same battery (or of the combined score). It relabels per prompt, so it
    assumes the candidate and the controls are alike on every prompt; models that differ in
    style throughout make it too small. ``pvalue_models`` relabels whole models instead:
    the candidate's rank among the k + 1 models, (1 + #{controls with excess >= the
    candidate's}) / (k + 1). Exact under exchangeable models, it cannot go below 1 / (k + 1):
    with few controls no test can say more. NaN where no test is possible.
    """

    statistic: float
    pvalue: float
    pvalue_holm: float
    method: str
    alternative: str
    n_prompts: int
    n_resamples: int
    seed: int | None
    pvalue_models: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": json_float(self.statistic),
            "p_value": json_float(self.pvalue),
            "p_value_holm": json_float(self.pvalue_holm),
            "p_value_models": json_float(self.pvalue_models),
            "method": self.method,
            "alternative": self.alternative,
            "n_prompts": int(self.n_prompts),
            "n_resamples": int(self.n_resamples),
            "seed": None if self.seed is None else int(self.seed),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NullTest:
        return cls(nan_float(d["statistic"]), nan_float(d["p_value"]), nan_float(d["p_value_holm"]), str(d["method"]),
                   str(d["alternative"]), int(d["n_prompts"]), int(d["n_resamples"]),
                   None if d.get("seed") is None else int(d["seed"]), nan_float(d.get("p_value_models")))


def warn_degenerate(why: str, stacklevel: int = 3) -> None:
    warnings.warn(f"{why}; the confidence interval is undefined (NaN)", DegenerateDataWarning, stacklevel=stacklevel)


def nan_estimate(estimate: float, *, confidence_level: float, method: str, n_prompts: int, n_resamples: int,
                 seed: int | None) -> Estimate:
    """An estimate without an interval (the caller has warned why)."""
    return Estimate(float(estimate), ConfidenceInterval(math.nan, math.nan), math.nan, float(confidence_level),
                    method, int(n_prompts), int(n_resamples), seed)


def json_float(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def nan_float(v) -> float:
    return math.nan if v is None else float(v)
