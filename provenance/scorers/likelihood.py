"""White-box checks: how likely a model with local weights finds other models' answers.

A student trained on a teacher's outputs (or its logits) assigns the teacher's answers a
higher likelihood than an independent model does. For every model whose weights are local
(``model.white_box``: the ``hf/`` backend) and every stored answer of every model in the audit
to the battery's prompts:

    g(a -> b) on a prompt = exp(mean per-token log-probability, under model a, of model b's
                                answers to it)      (a geometric-mean token probability in (0, 1])

The per-prompt similarity of a pair is the mean of the directions that exist (g(a -> b) where
a is white-box, g(b -> a) where b is); a model's ceiling is g(a -> a), its own answers under
itself. Where neither model of a pair is white-box the pair has no score (NaN): with only the
candidate local, s(C, R) = g(C -> R) and the candidate-side baseline mean_K g(C -> K) ("how
likely it finds the controls' answers") are what remain; :func:`likelihood_statistics`
reports that contrast directly, in nats per token.

Next-token agreement: where two white-box models share a tokenizer, the share of answer
positions (over every model's first answer to a prompt) at which their most likely next
tokens agree.

Log-likelihoods are cached in the store (table ``loglik_cache``), keyed by the scoring model's
identity hash, the prompt hash and the answer's content hash, so a re-run scores nothing twice.
This scorer needs the models themselves, so it runs only inside an audit
(:func:`prepare_white_box`, called by ``audit.build_report``); its per-response feature is just
the answer's length.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import ScoringError
from .base import Scorer

if TYPE_CHECKING:
    from ..analysis import BatteryData
    from ..models.base import Model
    from ..store import Store

CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS loglik_cache (
    scorer_key TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    sum_logprob REAL NOT NULL,
    n_tokens INTEGER NOT NULL,
    PRIMARY KEY (scorer_key, prompt_hash, content_hash)
);
"""
NEEDS_MODELS = ("the likelihood battery needs the models themselves (white-box checks); run it in an audit "
                "with hf/ models, not on transcripts or from scores alone")


class LikelihoodScorer(Scorer):
    """Per-response feature: the answer's length; pair scores come from :func:`prepare_white_box`."""

    name: ClassVar[str] = "likelihood"
    needs_models: ClassVar[bool] = True

    def features(self, text: str, prompt: Any = None) -> dict:
        return {"chars": len(text) if isinstance(text, str) else 0}

    def pair(self, a, b):
        raise ScoringError(NEEDS_MODELS)

    def similarity(self, x: list, y: list) -> float:
        raise ScoringError(NEEDS_MODELS)

    def self_similarity(self, x: list) -> float:
        raise ScoringError(NEEDS_MODELS)

    def check_prompt(self, prompt) -> str | None:
        return None

    def describe(self, feature: Any) -> str:
        n = feature.get("chars", 0) if isinstance(feature, dict) else 0
        return f"answer of {n} characters, scored by the white-box models"


def scorer_key(model: "Model") -> str:
    """The identity of a scoring model (weights, chat template, system prompt), without sampling."""
    return hashlib.sha256(json.dumps(model.identity(), sort_keys=True, default=str).encode()).hexdigest()[:32]


def _cached(store: "Store", key: str, items: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[float, int]]:
    with store.conn:
        store.conn.executescript(CACHE_SCHEMA)
    out = {}
    rows = store.conn.execute("SELECT prompt_hash, content_hash, sum_logprob, n_tokens FROM loglik_cache "
                              "WHERE scorer_key=?", (key,)).fetchall()
    wanted = set(items)
    for ph, ch, lp, n in rows:
        if (ph, ch) in wanted:
            out[(ph, ch)] = (float(lp), int(n))
    return out


def loglikelihoods(model: "Model", store: "Store", requests: list[tuple[str, str, str, str]]
                   ) -> dict[tuple[str, str], tuple[float, int]]:
    """(prompt_hash, content_hash) -> (sum log-prob, tokens) of each (prompt_hash, prompt,
    content_hash, answer) under ``model``, from the cache where there, else computed and cached."""
    key = scorer_key(model)
    unique = {(ph, ch): (p, t) for ph, p, ch, t in requests}
    have = _cached(store, key, list(unique))
    todo = [(k, v) for k, v in unique.items() if k not in have]
    if todo:
        results = model.loglikelihood([v for _, v in todo])
        rows = [(key, k[0], k[1], float(lp), int(n)) for (k, _), (lp, n) in zip(todo, results)]
        with store.conn:
            store.conn.executemany("INSERT OR REPLACE INTO loglik_cache VALUES (?, ?, ?, ?, ?)", rows)
        have.update({(r[1], r[2]): (r[3], r[4]) for r in rows})
    return have


def _tokenizer_hash(model: "Model") -> str | None:
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        return None
    try:
        vocab = tok.get_vocab()
    except Exception:
        return None
    return hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest()


def _argmax_tokens(model: "Model", pairs: list[tuple[str, str]]) -> list[list[tuple[int, int]]]:
    """For each (prompt, answer): (answer token, most likely token) at every answer position,
    under ``model`` (an hf/ model)."""
    return [list(zip(ids, top)) for _, ids, top in model.token_scores(pairs)]


def prepare_white_box(data: "BatteryData", models: dict[str, "Model"], store: "Store") -> None:
    """Give ``data`` (a battery scored by ``likelihood``) its per-prompt pair scores, computed
    with the white-box models among ``models``; records which checks ran for which model in
    ``data.white_box``. A no-op for any other scorer."""
    from ..scorers import get_scorer
    from ..stats.excess import ScoreTable

    if not getattr(get_scorer(data.battery.scorer), "needs_models", False):
        return
    labels = list(data.features)
    n = len(data.prompt_ids)
    white = {lab: models[lab] for lab in labels if getattr(models.get(lab), "white_box", False)}
    # g[a][b]: per prompt, exp(mean over b's answers of a's mean per-token log-probability)
    mean_lp: dict[str, dict[str, np.ndarray]] = {}
    checks: dict[str, dict[str, Any]] = {}
    for lab in labels:
        m = models.get(lab)
        checks[lab] = {"white_box": lab in white, "provider": getattr(m, "provider", None),
                       "loglikelihood": "computed" if lab in white else "not available (no local weights)",
                       "next_token": "not available (no local weights)"}
    for a, model in white.items():
        reqs = [(r.prompt_hash, r.prompt, r.content_hash, r.text) for b in labels for per in data.responses[b]
                for r in per if r.text.strip()]
        try:
            ll = loglikelihoods(model, store, reqs)
        except Exception as e:  # a model that cannot score is reported, not fatal
            checks[a]["loglikelihood"] = f"failed ({type(e).__name__}: {str(e)[:120]})"
            continue
        mean_lp[a] = {}
        for b in labels:
            row = np.full(n, math.nan)
            for i, per in enumerate(data.responses[b]):
                vals = [ll[(r.prompt_hash, r.content_hash)] for r in per if (r.prompt_hash, r.content_hash) in ll]
                vals = [lp / k for lp, k in vals if k > 0]
                if vals:
                    row[i] = float(np.mean(vals))
            mean_lp[a][b] = row

    def g(a: str, b: str) -> np.ndarray:
        return np.exp(mean_lp[a][b]) if a in mean_lp else np.full(n, math.nan)

    def pair(a: str, b: str) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.vstack([g(a, b), g(b, a)]), axis=0)

    def self_pair(a: str) -> np.ndarray:
        return g(a, a)

    data._table = ScoreTable(data.battery.name, data.prompt_keys(), pair=pair, self_pair=self_pair)  # noqa: SLF001
    data.white_box = {"checks": checks, "mean_logprob": mean_lp, "agreement": {}}
    # next-token agreement between white-box models that share a tokenizer
    groups: dict[str, list[str]] = {}
    for a, model in white.items():
        h = _tokenizer_hash(model) if a in mean_lp else None
        if h and hasattr(model, "_model"):
            groups.setdefault(h, []).append(a)
    for members in groups.values():
        if len(members) < 2:
            for a in members:
                checks[a]["next_token"] = "no other white-box model shares its tokenizer"
            continue
        firsts = [(i, per[0]) for b in labels for i, per in enumerate(data.responses[b]) if per and per[0].text.strip()]
        pairs = [(r.prompt, r.text) for _, r in firsts]
        preds = {}
        for a in members:
            try:
                preds[a] = _argmax_tokens(white[a], pairs)
                checks[a]["next_token"] = "computed"
            except Exception as e:
                checks[a]["next_token"] = f"failed ({type(e).__name__})"
        agree: dict[tuple[str, str], np.ndarray] = {}
        names = sorted(preds)
        for x in range(len(names)):
            for y in range(x + 1, len(names)):
                a, b = names[x], names[y]
                hits, tot = np.zeros(n), np.zeros(n)
                for (i, _), pa, pb in zip(firsts, preds[a], preds[b]):
                    hits[i] += sum(1 for (_, u), (_, v) in zip(pa, pb) if u == v)
                    tot[i] += len(pa)
                with np.errstate(invalid="ignore", divide="ignore"):
                    agree[(a, b)] = np.where(tot > 0, hits / np.maximum(tot, 1), math.nan)
        data.white_box["agreement"].update(agree)


def likelihood_statistics(data: "BatteryData", candidate: str, references: list[str], controls: list[str], *,
                          confidence_level: float, n_resamples: int, seed: int) -> dict | None:
    """The white-box checks of a likelihood battery for the report: which ran for which model;
    per reference, the candidate's mean per-token log-likelihood of the reference's answers
    minus that of the controls' answers (nats per token, cluster bootstrap over prompts); and
    next-token agreement of the candidate with each local reference against the controls."""
    from ..stats.basic import bootstrap_mean

    wb = getattr(data, "white_box", None)
    if not wb:
        return None
    lp = wb["mean_logprob"]
    out: dict[str, Any] = {"battery": data.battery.name, "kind": "likelihood", "checks": wb["checks"],
                           "loglikelihood": [], "next_token_agreement": []}
    opts = dict(confidence_level=confidence_level, n_resamples=n_resamples, rng=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if candidate in lp and controls:
            base = np.nanmean(np.vstack([lp[candidate][k] for k in controls]), axis=0)
            for ref in references:
                diff = lp[candidate][ref] - base
                out["loglikelihood"].append({
                    "reference": ref, "scoring_model": candidate,
                    "what": "candidate's mean per-token log-likelihood of the reference's answers minus that of the "
                            "controls' answers (nats per token)",
                    "reference_answers": _finite_mean(lp[candidate][ref]), "control_answers": _finite_mean(base),
                    "excess": bootstrap_mean(diff, **opts).to_dict()})
        agree = wb["agreement"]

        def ag(a, b):
            return agree.get((a, b), agree.get((b, a)))

        for ref in references:
            s = ag(candidate, ref)
            ks = [ag(k, ref) for k in controls if ag(k, ref) is not None]
            if s is None or not ks:
                continue
            base = np.nanmean(np.vstack(ks), axis=0)
            out["next_token_agreement"].append({
                "reference": ref, "candidate": _finite_mean(s), "controls": _finite_mean(base),
                "what": "share of answer positions where the candidate's and the reference's most likely next "
                        "tokens agree, minus the same share for the controls and the reference",
                "excess": bootstrap_mean(s - base, **opts).to_dict()})
    return out


def _finite_mean(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None
