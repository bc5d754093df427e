"""Planning: how many prompts (and samples per prompt) an audit needs, from a pilot.

The excess is a mean over prompts of a per-prompt contrast d_p, so its standard error is
sigma / sqrt(n). With m samples per model and prompt, sigma^2 has two parts:

    sigma^2(m) = between^2 + within^2(m),   within^2(m) ~ within^2(m0) * m0 / m

``between`` is how much the contrast really differs from prompt to prompt (more samples
cannot remove it); ``within`` is sampling noise inside a prompt, which shrinks with more
samples. The pilot gives sigma^2(m0) (the variance of its per-prompt contrasts) and, when it
has at least two samples per prompt, within^2: each model's samples are split into two
halves, the contrast is computed on each half, and Var(d_A - d_B) / 2 estimates the noise
at m0 / 2 samples, so within^2(m0) is half of it. (The 1/m law is an approximation: a pair
score averages m x m cross pairs of samples, which are not independent.)

From sigma(m):

    prompts for a half-width w      n = (z * sigma / w)^2, with z widened for small n as
                                    the intervals are (sqrt(n / (n - 1)) t_{n-1})
    prompts for power 1 - beta      n = ((z_{1-alpha} + z_{1-beta}) * sigma / delta)^2 to
                                    detect an excess delta with a one-sided level-alpha test

and the API calls such an audit costs: prompts x samples x models. Only the numbers of the
pilot enter; no model is called.

The excess intervals also carry the spread between models (``provenance.stats.excess``): a
variance V_m that more prompts do not reduce. With it the half-width at n prompts is
t_nu sqrt(sigma^2 / n + V_m); where t sqrt(V_m) alone exceeds the target, no number of
prompts reaches it, and the plan says so (more controls shrink part of V_m; the candidate's
own spread never goes away).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

__all__ = ["PlanOption", "PlanRow", "plan_row", "prompts_for_half_width", "prompts_for_power", "variance_parts"]

MAX_PROMPTS = 10**7


@dataclass(frozen=True)
class PlanOption:
    samples: int
    sd: float  # per-prompt standard deviation of the contrast at this many samples
    prompts_for_half_width: int | None
    prompts_for_power: int | None
    calls_for_half_width: int | None
    calls_for_power: int | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class PlanRow:
    """One battery and reference (or the combined score): the pilot and what it implies."""

    battery: str
    reference: str
    scale: str
    pilot_prompts: int
    pilot_samples: int
    pilot_estimate: float
    pilot_half_width: float
    sd_between: float
    sd_within: float  # at the pilot's samples; NaN when the pilot has one sample per prompt
    sd_models: float  # spread between models in the excess (not reduced by prompts); NaN if unknown
    half_width: float | None
    effect: float | None
    power: float
    alpha: float
    options: tuple[PlanOption, ...]
    note: str

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "options"}
        d = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
        d["options"] = [o.to_dict() for o in self.options]
        return d


def variance_parts(d_full, d_half_a=None, d_half_b=None) -> tuple[float, float]:
    """(sd_between, sd_within at the pilot's samples) from per-prompt contrasts.

    Without the two half-sample contrasts the split is unknown: all variance is reported
    as between-prompt and within is NaN.
    """
    d = np.asarray(d_full, float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return math.nan, math.nan
    total = float(np.var(d, ddof=1))
    if d_half_a is None or d_half_b is None:
        return math.sqrt(total), math.nan
    diff = np.asarray(d_half_a, float) - np.asarray(d_half_b, float)
    diff = diff[np.isfinite(diff)]
    if diff.size < 2:
        return math.sqrt(total), math.nan
    within_half = float(np.mean(diff**2)) / 2  # noise variance at half the samples
    within = within_half / 2
    between = max(total - within, 0.0)
    return math.sqrt(between), math.sqrt(within)


def sd_at(samples: int, pilot_samples: int, sd_between: float, sd_within: float) -> float:
    if not math.isfinite(sd_within):
        return sd_between  # unknown split: no gain from samples assumed
    return math.sqrt(sd_between**2 + sd_within**2 * pilot_samples / samples)


def half_width_at(n: int, sd: float, *, confidence_level: float = 0.95, between: tuple[float, float] | None = None
                  ) -> float:
    """Expected half-width of the excess interval at n prompts (see the module docstring)."""
    q = 1 - (1 - confidence_level) / 2
    var_p = sd**2 / (n - 1)  # sd^2 / n times the small-sample factor n / (n - 1)
    var_m, df_m = between if between else (0.0, math.inf)
    if var_m <= 0:
        return special.stdtrit(n - 1, q) * math.sqrt(var_p)
    nu = (var_p + var_m) ** 2 / (var_p**2 / (n - 1) + var_m**2 / max(df_m, 1e-9))
    return special.stdtrit(max(nu, 1.0), q) * math.sqrt(var_p + var_m)


def prompts_for_half_width(sd: float, half_width: float, *, confidence_level: float = 0.95,
                           between: tuple[float, float] | None = None) -> int | None:
    """Smallest n whose expected half-width is at most ``half_width``; None if none is."""
    if not (math.isfinite(sd) and half_width > 0):
        return None
    if half_width_at(MAX_PROMPTS, sd, confidence_level=confidence_level, between=between) > half_width:
        return None
    if sd == 0:
        return 2
    lo, hi = 2, 4
    while half_width_at(hi, sd, confidence_level=confidence_level, between=between) > half_width:
        lo, hi = hi, hi * 2
    while lo < hi:  # half-width falls with n
        mid = (lo + hi) // 2
        if half_width_at(mid, sd, confidence_level=confidence_level, between=between) <= half_width:
            hi = mid
        else:
            lo = mid + 1
    return lo


def prompts_for_power(sd: float, effect: float, *, power: float = 0.8, alpha: float = 0.05,
                      between: tuple[float, float] | None = None) -> int | None:
    """Prompts to detect an excess ``effect`` > 0 with a one-sided level-``alpha`` test
    (normal approximation; with the spread between models V_m, sd^2 / n + V_m must fall to
    (effect / (z_alpha + z_power))^2, which needs V_m below it). None where unreachable."""
    if not (math.isfinite(sd) and effect and effect > 0 and 0 < power < 1 and 0 < alpha < 1):
        return None
    target = (effect / (special.ndtri(1 - alpha) + special.ndtri(power))) ** 2
    var_m = between[0] if between else 0.0
    if var_m >= target:
        return None
    if sd == 0:
        return 2
    n = sd**2 / (target - var_m)
    return int(min(MAX_PROMPTS, max(2, math.ceil(n))))


def plan_row(battery: str, reference: str, scale: str, d_full, d_half_a=None, d_half_b=None, *,
             pilot_samples: int, n_models: int, half_width: float | None = None, effect: float | None = None,
             power: float = 0.8, alpha: float = 0.05, confidence_level: float = 0.95,
             samples: Sequence[int] = (1, 2, 4, 8, 16), between: tuple[float, float] | None = None) -> PlanRow:
    """The plan for one per-prompt contrast (see the module docstring).

    ``effect`` defaults to the pilot's own estimate when that is positive (a noisy guess:
    the row's note says so); ``half_width`` to half the pilot's interval width, i.e. the
    precision the pilot already has, when not given.
    """
    d = np.asarray(d_full, float)
    ok = d[np.isfinite(d)]
    n0 = int(ok.size)
    est = float(ok.mean()) if n0 else math.nan
    sd_b, sd_w = variance_parts(d, d_half_a, d_half_b)
    sd0 = sd_at(pilot_samples, pilot_samples, sd_b, sd_w)
    pilot_hw = half_width_at(n0, sd0, confidence_level=confidence_level, between=between) if n0 >= 2 else math.nan
    notes = []
    if between and between[0] > 0:
        floor = half_width_at(MAX_PROMPTS, sd0, confidence_level=confidence_level, between=between)
        notes.append(f"the controls differ among themselves: however many prompts, the half-width stays above "
                     f"{floor:.3f} with these {int(between[1]) + 1} controls (more controls shrink it)")
    if half_width is None and math.isfinite(pilot_hw):
        half_width = pilot_hw
    if effect is None and math.isfinite(est) and est > 0:
        effect = est
        notes.append("effect for power = the pilot's own estimate (noisy; give --effect to plan for another)")
    if not math.isfinite(sd_w):
        notes.append("one sample per prompt in the pilot: the within-prompt part is unknown, so more samples are "
                     "assumed not to help")
    elif sd_b > 0 and sd_w < 0.25 * sd_b:
        notes.append("prompt-to-prompt variation dominates: more prompts help, more samples barely do")
    options = []
    for m in sorted(set(int(s) for s in samples if s >= 1)):
        sd = sd_at(m, pilot_samples, sd_b, sd_w)
        nw = prompts_for_half_width(sd, half_width, confidence_level=confidence_level, between=between) \
            if half_width else None
        npow = prompts_for_power(sd, effect, power=power, alpha=alpha, between=between) if effect else None
        options.append(PlanOption(m, sd, nw, npow, None if nw is None else nw * m * n_models,
                                  None if npow is None else npow * m * n_models))
    sd_m = math.sqrt(between[0]) if between else math.nan
    return PlanRow(battery, reference, scale, n0, int(pilot_samples), est, pilot_hw, sd_b, sd_w, sd_m, half_width,
                   effect, power, alpha, tuple(options), "; ".join(notes))
