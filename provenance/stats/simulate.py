"""Synthetic audits with a known true excess, for checking that intervals cover the truth.

Each synthetic audit draws prompts from a population, and per prompt the answers of a
candidate C, a reference R and k controls K, several samples each, exactly as a battery
would see them; the pair scores are computed the way the real scorers compute them (mean
over cross pairs of samples). The truth is the population value of each estimand, known in
closed form or from a very large Monte Carlo draw.

Two kinds of battery:

``quirks``  categorical answers (a "random" pick). Per prompt a base distribution pi over A
    answers; each model's distribution q_M ~ Dirichlet(conc * pi); a student's is
    (1 - lam) q_own + lam q_R. A response has no answer with probability ``p_missing``.
    Score: exact-match rate over cross pairs (unbiased for sum_a q_M(a) q_N(a)).
``ngram``   sets of word n-grams. Per prompt G grams with base inclusion probabilities; each
    model's probabilities are logit-normal around them; a student's are mixed with R's. A
    response includes each gram independently. Score: Jaccard index over cross pairs.

With ``lam = 0`` the candidate is one more independent model, exchangeable with the
controls, and every true excess is exactly 0. With ``lam > 0`` the true excess is positive
(every baseline side gives the same value) and the true normalised score is ``lam`` for the
``quirks`` kind (ceiling minus baseline is the denominator of lam's own definition there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .excess import ScoreTable

__all__ = ["SyntheticBattery", "synthetic_tables", "true_values"]


@dataclass(frozen=True)
class SyntheticBattery:
    kind: str = "quirks"  # "quirks" or "ngram"
    lam: float = 0.0  # share of the candidate's behaviour taken from R
    samples: int = 4
    n_answers: int = 6
    concentration: float = 3.0
    p_missing: float = 0.05
    n_grams: int = 24
    spread: float = 1.2
    model_effect: float = 0.0  # strength of each model's persistent habits, the same on every prompt
    name: str | None = None

    @property
    def battery(self) -> str:
        return self.name or self.kind


MODELS = ("C", "R")


def _labels(k: int) -> list[str]:
    return ["C", "R", *[f"K{i + 1}" for i in range(k)]]


def _model_params(spec: SyntheticBattery, n: int, k: int, g: np.random.Generator,
                  persistent: bool = True) -> dict[str, np.ndarray]:
    """Per model, per prompt: answer distributions (n, A) or inclusion probabilities (n, G).

    With ``model_effect`` > 0 each model also has habits of its own, drawn once and kept on
    every prompt (``persistent``; for population values they are drawn afresh per prompt),
    so that independent models differ in how close they come to the reference.
    """
    labels = _labels(k)
    rows = 1 if persistent else n
    if spec.kind == "quirks":
        pi = g.dirichlet(np.ones(spec.n_answers), size=n)
        q = {}
        for m in labels + ["own"]:
            habit = g.dirichlet(np.ones(spec.n_answers), size=rows)
            centre = (1 - spec.model_effect) * pi + spec.model_effect * habit
            q[m] = _dirichlet_rows(spec.concentration * centre, g)
    elif spec.kind == "ngram":
        base = g.beta(1.0, 3.0, size=(n, spec.n_grams))
        logit = np.log(base) - np.log1p(-base)
        q = {m: 1 / (1 + np.exp(-(logit + spec.spread * g.standard_normal((n, spec.n_grams))
                                  + spec.model_effect * g.standard_normal((rows, spec.n_grams)))))
             for m in labels + ["own"]}
    else:
        raise ValueError(f"kind must be 'quirks' or 'ngram', got {spec.kind!r}")
    q["C"] = (1 - spec.lam) * q["own"] + spec.lam * q["R"]
    del q["own"]
    return q


def _dirichlet_rows(alpha: np.ndarray, g: np.random.Generator) -> np.ndarray:
    x = g.gamma(np.maximum(alpha, 1e-3))
    return x / x.sum(axis=1, keepdims=True)


def _sample(spec: SyntheticBattery, q: np.ndarray, g: np.random.Generator) -> np.ndarray:
    n, m = q.shape[0], spec.samples
    if spec.kind == "quirks":
        u = g.random((n, m, 1))
        ans = (u > np.cumsum(q, axis=1)[:, None, :]).sum(axis=2).astype(float)  # (n, m)
        ans[g.random((n, m)) < spec.p_missing] = np.nan
        return ans
    return g.random((n, m, q.shape[1])) < q[:, None, :]  # (n, m, G) bool


def _pair(spec: SyntheticBattery, a: np.ndarray, b: np.ndarray, same: bool = False) -> np.ndarray:
    if spec.kind == "quirks":
        eq = (a[:, :, None] == b[:, None, :]).astype(float)
        ok = np.isfinite(a)[:, :, None] & np.isfinite(b)[:, None, :]
    else:
        inter = (a[:, :, None, :] & b[:, None, :, :]).sum(-1)
        union = (a[:, :, None, :] | b[:, None, :, :]).sum(-1)
        ok = union > 0
        eq = np.where(ok, inter / np.maximum(union, 1), 0.0)
    if same:
        m = a.shape[1]
        ok = ok & ~np.eye(m, dtype=bool)[None]
    num = np.where(ok, eq, 0.0).sum(axis=(1, 2))
    den = ok.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def synthetic_tables(specs: list[SyntheticBattery], n_prompts: int | list[int], *, n_controls: int = 3,
                     rng=None) -> list[ScoreTable]:
    """One ScoreTable per battery spec, for models C, R, K1..Kk (all pairs and ceilings)."""
    g = np.random.default_rng(rng)
    ns = [n_prompts] * len(specs) if isinstance(n_prompts, int) else list(n_prompts)
    out = []
    for spec, n in zip(specs, ns):
        labels = _labels(n_controls)
        q = _model_params(spec, n, n_controls, g)
        samples = {m: _sample(spec, q[m], g) for m in labels}
        pairs = {(a, b): _pair(spec, samples[a], samples[b]) for i, a in enumerate(labels) for b in labels[i + 1:]}
        selfs = {m: _pair(spec, samples[m], samples[m], same=True) for m in labels}
        out.append(ScoreTable(spec.battery, [f"{spec.battery}:{i}" for i in range(n)], pairs=pairs, selfs=selfs))
    return out


def true_values(spec: SyntheticBattery, *, n_draws: int = 400_000, rng=12345) -> dict[str, float]:
    """Population values: the excess for each baseline side and the normalised score with
    the reference-side and both-sides baselines ("excess:<side>", "normalised:<side>").

    With lam = 0 every excess is exactly 0 by symmetry. Otherwise the expectations are
    estimated from ``n_draws`` prompts with exact per-prompt expectations (quirks) or one
    sample per model per prompt (ngram; unbiased, Monte Carlo error about 1e-4).
    """
    g = np.random.default_rng(rng)
    if spec.lam == 0:
        return {f"{w}:{side}": 0.0 for w in ("excess", "normalised") for side in ("reference", "candidate", "both")}
    if spec.kind == "quirks":
        q = _model_params(spec, n_draws, 2, g, persistent=False)
        e = {k: float(np.mean(v)) for k, v in {
            "CR": (q["C"] * q["R"]).sum(1), "KR": (q["K1"] * q["R"]).sum(1), "CK": (q["C"] * q["K1"]).sum(1),
            "RR": (q["R"] ** 2).sum(1)}.items()}
    else:
        one = SyntheticBattery(**{**spec.__dict__, "samples": 1})
        acc: dict[str, list[float]] = {"CR": [], "KR": [], "CK": [], "RR": []}
        for _ in range(max(1, n_draws // 50_000)):
            q = _model_params(one, 50_000, 2, g, persistent=False)
            s = {m: _sample(one, q[m], g) for m in ("C", "R", "K1")}
            s["R2"] = _sample(one, q["R"], g)
            for key, (a, b) in {"CR": ("C", "R"), "KR": ("K1", "R"), "CK": ("C", "K1"), "RR": ("R", "R2")}.items():
                acc[key].append(float(np.nanmean(_pair(one, s[a], s[b]))))
        e = {k: float(np.mean(v)) for k, v in acc.items()}
    base = {"reference": e["KR"], "candidate": e["CK"], "both": (e["KR"] + e["CK"]) / 2}
    out = {}
    for side, b in base.items():
        out[f"excess:{side}"] = e["CR"] - b
        out[f"normalised:{side}"] = (e["CR"] - b) / (e["RR"] - b)
    return out
