"""Estimates with confidence intervals, resampling prompts as the unit.

Samples within one prompt are not independent, so every interval here comes from a cluster
bootstrap over prompts (the caller first averages samples within each prompt, leaving one
number per prompt), or from an exact-style interval where the statistic is a proportion
(Wilson or Clopper-Pearson).

- :mod:`.estimate`: the result objects (:class:`Estimate`, :class:`NullTest`), frozen
  dataclasses in the style of ``scipy.stats``.
- :mod:`.bootstrap`: the vectorised engine: replicates are multinomial counts over prompts,
  every statistic is a function of column means of a (prompts x columns) matrix.
- :mod:`.basic`: one-number estimates (a mean, a paired excess, a proportion).
- :mod:`.excess`: an audit's estimates: similarity, baselines, excess, ceiling, normalised
  score, the combination across batteries and the permutation tests, in shared replicates.
- :mod:`.pool`: many models at once: pairwise similarity matrix, teacher rankings.
- :mod:`.planning`: prompts and samples needed for a target interval width or power.

Degenerate data (fewer than two prompts, no variation) never raises and never yields a
falsely narrow interval: it warns with :class:`DegenerateDataWarning` and returns NaN bounds.
"""

from __future__ import annotations

from .basic import bootstrap_mean, is_binary, paired_excess, proportion_interval, wilson_interval
from .estimate import ConfidenceInterval, DegenerateDataWarning, Estimate, NullTest

__all__ = [
    "ConfidenceInterval",
    "DegenerateDataWarning",
    "Estimate",
    "NullTest",
    "bootstrap_mean",
    "is_binary",
    "paired_excess",
    "proportion_interval",
    "wilson_interval",
]
