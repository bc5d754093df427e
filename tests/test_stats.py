"""provenance.stats: coverage, pairing, NaN handling, degenerate data, reproducibility."""

from __future__ import annotations

import json
import math
import time
import warnings

import numpy as np
import pytest

from provenance.stats import (
    ConfidenceInterval,
    DegenerateDataWarning,
    Estimate,
    bootstrap_mean,
    paired_excess,
    proportion_interval,
    wilson_interval,
)
from provenance.stats import bootstrap as bs


def _coverage(draw, truth, n_sets=600, n_prompts=40, seed=20250601, **kw):
    """Share of n_sets synthetic audits whose 95% interval covers the true mean (SE ~0.9%)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_sets):
        e = bootstrap_mean(draw(rng, n_prompts), n_resamples=999, rng=rng, **kw)
        hits += e.confidence_interval.low <= truth <= e.confidence_interval.high
    return hits / n_sets


def test_coverage_normal():
    cov = _coverage(lambda g, n: g.normal(0.3, 0.2, n), truth=0.3)
    assert 0.92 <= cov <= 0.98, cov


def test_coverage_skewed_bounded_scores():
    # Per-prompt means of 5 Bernoulli(0.2) samples: skewed, bounded, discrete, like real scores.
    cov = _coverage(lambda g, n: g.binomial(5, 0.2, n) / 5, truth=0.2)
    assert 0.92 <= cov <= 0.98, cov


def test_small_sample_expansion_restores_coverage_at_ten_prompts():
    draw = lambda g, n: g.binomial(5, 0.2, n) / 5  # noqa: E731
    textbook = _coverage(draw, 0.2, n_sets=500, n_prompts=10, small_sample="none")
    expanded = _coverage(draw, 0.2, n_sets=500, n_prompts=10)
    assert textbook < 0.925 < expanded, (textbook, expanded)


def test_estimate_fields_and_method():
    x = np.random.default_rng(1).normal(size=50)
    e = bootstrap_mean(x, n_resamples=999, rng=3)
    assert e.estimate == pytest.approx(x.mean())
    assert e.confidence_interval.low < e.estimate < e.confidence_interval.high
    assert e.standard_error == pytest.approx(x.std(ddof=1) / math.sqrt(50), rel=0.15)
    assert (e.method, e.n_prompts, e.n_resamples, e.seed, e.confidence_level) == (
        "expanded BCa cluster bootstrap over prompts", 50, 999, 3, 0.95)
    p = bootstrap_mean(x, n_resamples=999, rng=3, method="percentile", small_sample="none")
    assert p.method == "percentile cluster bootstrap over prompts"
    narrow = bootstrap_mean(x, n_resamples=999, rng=3, confidence_level=0.5)
    assert narrow.confidence_interval.high - narrow.confidence_interval.low < e.confidence_interval.high - e.confidence_interval.low


def test_bca_matches_scipy_without_expansion():
    import scipy.stats

    x = np.random.default_rng(12).gamma(2.0, 1.0, 80)
    ours = bootstrap_mean(x, n_resamples=20000, rng=1, small_sample="none", method="BCa")
    ref = scipy.stats.bootstrap((x,), np.mean, n_resamples=20000, method="BCa", rng=np.random.default_rng(2))
    assert ours.confidence_interval.low == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert ours.confidence_interval.high == pytest.approx(ref.confidence_interval.high, abs=0.02)


def test_same_seed_same_result_and_none_records_a_seed():
    x = np.random.default_rng(2).exponential(size=30)
    assert bootstrap_mean(x, n_resamples=999, rng=11) == bootstrap_mean(x, n_resamples=999, rng=11)
    assert bootstrap_mean(x, n_resamples=999, rng=11) != bootstrap_mean(x, n_resamples=999, rng=12)
    free = bootstrap_mean(x, n_resamples=999)
    assert isinstance(free.seed, int)
    assert bootstrap_mean(x, n_resamples=999, rng=free.seed) == free
    assert bootstrap_mean(x, n_resamples=999, rng=np.random.default_rng(5)).seed is None


def test_nan_prompts_are_dropped():
    x = np.array([0.1, np.nan, 0.5, 0.3, np.nan, 0.9, 0.2])
    e = bootstrap_mean(x, n_resamples=999, rng=1)
    assert e.n_prompts == 5
    assert e == bootstrap_mean(x[~np.isnan(x)], n_resamples=999, rng=1)


@pytest.mark.parametrize("values, n", [([], 0), ([0.4], 1), ([np.nan, 0.4, np.nan], 1), ([0.3] * 20, 20)])
def test_degenerate_data_warns_and_gives_nan_interval(values, n):
    with pytest.warns(DegenerateDataWarning):
        e = bootstrap_mean(values, n_resamples=999, rng=1)
    assert e.n_prompts == n
    assert math.isnan(e.confidence_interval.low) and math.isnan(e.confidence_interval.high)
    assert math.isnan(e.standard_error)
    if n:
        assert e.estimate == pytest.approx(np.nanmean(values))
    assert e.to_dict()["ci_low"] is None


def test_auto_falls_back_to_percentile_when_bca_fails(monkeypatch):
    x = np.random.default_rng(4).normal(size=30)
    real = bs._bca
    monkeypatch.setattr(bs, "_bca", lambda *a: bs._Fail("pretend BCa is unstable"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fallback itself is silent
        e = bootstrap_mean(x, n_resamples=999, rng=9)
    assert e.method == "expanded percentile cluster bootstrap over prompts"
    monkeypatch.setattr(bs, "_bca", real)
    assert e == bootstrap_mean(x, n_resamples=999, rng=9, method="percentile")
    # Asking for BCa explicitly gives no silent substitute.
    monkeypatch.setattr(bs, "_bca", lambda *a: bs._Fail("pretend BCa is unstable"))
    with pytest.warns(DegenerateDataWarning, match="pretend"):
        forced = bootstrap_mean(x, n_resamples=999, rng=9, method="BCa")
    assert math.isnan(forced.confidence_interval.low)


def test_one_outlier_among_constants_is_not_a_narrow_interval():
    # 29 identical prompts and one different: BCa is undefined (the estimate sits on the edge of
    # its replicates); the percentile interval still spans the outlier's pull.
    x = np.r_[np.zeros(29), 1.0]
    e = bootstrap_mean(x, n_resamples=1999, rng=1)
    assert e.method.startswith("expanded percentile")
    assert e.confidence_interval.low == 0.0 and e.confidence_interval.high >= 1 / 30


def test_paired_excess_is_bootstrap_of_differences():
    g = np.random.default_rng(6)
    s = g.uniform(0.2, 0.8, 60)
    b = s - 0.1 + g.normal(0, 0.05, 60)
    assert paired_excess(s, b, n_resamples=999, rng=2) == bootstrap_mean(s - b, n_resamples=999, rng=2)


def test_paired_excess_averages_controls_ignoring_nan():
    g = np.random.default_rng(7)
    s = g.uniform(0.2, 0.8, 40)
    b = g.uniform(0.1, 0.5, (40, 3))
    b[3, 1] = np.nan          # one control missing on a prompt: mean over the other two
    b[5, :] = np.nan          # no control on a prompt: the prompt is dropped
    s[8] = np.nan             # no similarity: dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = paired_excess(s, b, n_resamples=999, rng=1)
    keep = np.ones(40, bool)
    keep[[5, 8]] = False
    sums = np.where(np.isnan(b), 0, b).sum(axis=1)
    counts = (~np.isnan(b)).sum(axis=1)
    diff = s[keep] - sums[keep] / counts[keep]
    assert e.n_prompts == 38
    assert e == bootstrap_mean(diff, n_resamples=999, rng=1)


def test_paired_excess_shape_errors():
    with pytest.raises(ValueError, match="baseline"):
        paired_excess(np.zeros(5), np.zeros(4))
    with pytest.raises(ValueError, match="similarity"):
        paired_excess(np.zeros((5, 2)), np.zeros(5))


def test_bad_options_raise():
    with pytest.raises(ValueError, match="confidence_level"):
        bootstrap_mean([1.0, 2.0], confidence_level=95)
    with pytest.raises(ValueError, match="method"):
        bootstrap_mean([1.0, 2.0], method="bca")
    with pytest.raises(ValueError, match="small_sample"):
        bootstrap_mean([1.0, 2.0], small_sample="t")
    with pytest.raises(TypeError, match="rng"):
        bootstrap_mean([1.0, 2.0], rng="seed")


def test_wilson_and_clopper_pearson():
    e = wilson_interval(3, 10)
    assert e.estimate == pytest.approx(0.3)
    assert e.confidence_interval == pytest.approx((0.1078, 0.6032), abs=1e-4)
    assert (e.method, e.n_prompts, e.n_resamples, e.seed) == ("Wilson score interval", 10, 0, None)
    zero = wilson_interval(0, 20)
    assert zero.confidence_interval.low == pytest.approx(0.0, abs=1e-12) and zero.confidence_interval.high > 0.1
    cp = proportion_interval(3, 10, method="beta")
    assert cp.method == "Clopper-Pearson exact interval"
    assert cp.confidence_interval == pytest.approx((0.0667, 0.6525), abs=1e-4)
    with pytest.warns(DegenerateDataWarning):
        assert math.isnan(wilson_interval(0, 0).estimate)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_to_dict_from_dict_round_trip():
    e = bootstrap_mean(np.random.default_rng(8).normal(size=25), n_resamples=999, rng=4)
    d = e.to_dict()
    assert list(d) == ["estimate", "ci_low", "ci_high", "standard_error", "confidence_level", "method",
                       "n_prompts", "n_resamples", "seed"]
    assert Estimate.from_dict(json.loads(json.dumps(d))) == e
    nan = Estimate(0.5, ConfidenceInterval(math.nan, math.nan), math.nan, 0.95, "m", 1, 999, None)
    d = nan.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False))["ci_low"] is None
    back = Estimate.from_dict(d)
    assert math.isnan(back.confidence_interval.high) and back.estimate == 0.5


def test_fast_enough_for_500_prompts():
    x = np.random.default_rng(9).uniform(size=500)
    bootstrap_mean(x, n_resamples=99, rng=0)  # warm imports
    start = time.perf_counter()
    bootstrap_mean(x, n_resamples=9999, rng=0)
    # about 0.2 s on an idle core; the bound leaves room for a busy machine, and a loop over
    # resamples in Python would take tens of seconds
    assert time.perf_counter() - start < 3.0


def test_resampler_draws_shared_prompts_together():
    r = bs.Resampler({"a": ["p1", "p2", "p3"], "b": ["p3", "p1", "p2"], "c": ["q1", "q2"]}, 50, 1)
    assert np.array_equal(r.counts["a"][:, [0, 1, 2]], r.counts["b"][:, [1, 2, 0]])
    assert np.all(r.counts["a"].sum(axis=1) == 3) and np.all(r.counts["c"].sum(axis=1) == 2)
    again = bs.Resampler({"c": ["q1", "q2"], "b": ["p3", "p1", "p2"], "a": ["p1", "p2", "p3"]}, 50, 1)
    assert all(np.array_equal(r.counts[k], again.counts[k]) for k in "abc")
