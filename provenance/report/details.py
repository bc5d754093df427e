"""What the models said, per battery: the ``details``, ``usage`` and per-prompt scores of a report.

The estimates say how close the candidate comes to each reference; these sections show what
that closeness is made of, straight from the stored responses:

- self-identification batteries: which makers each model claims to be, by prompt language;
- quirk batteries: the distribution of each model's normalised answers, per kind of question;
- n-gram batteries: the word n-grams the candidate shares with a reference on the same prompt
  that no control used there (the candidate's and reference's *shared distinctive* n-grams).

``usage`` counts what the answers cost (responses, tokens, generation seconds, API calls and
their cost, from the store's evidence log). :func:`score_rows` gives every per-prompt pair
score, the numbers the bootstrap resamples, for ``scores.csv``.

Everything here is a plain function of the stored responses, so ``provenance verify`` can
recompute it. Strings in these sections are model output: untrusted, escaped by every view.
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from ..analysis import BatteryData
    from ..store import Store

NO_CLAIM = "no claim"
NO_ANSWER = "no answer"
OTHER = "other"
#: answers kept per model and question kind (the rest are counted as OTHER)
TOP_ANSWERS = 8
#: shared distinctive n-grams kept per reference
TOP_NGRAMS = 15
SCORE_COLUMNS = ("battery", "prompt_id", "prompt_key", "model_a", "role_a", "model_b", "role_b", "score")


def scorer_kind(scorer_name: str) -> str | None:
    """'self_id', 'quirks' or 'ngram' for the shipped scorers (and their subclasses), else None."""
    from ..scorers import NgramScorer, QuirksScorer, SelfIdScorer, get_scorer

    sc = get_scorer(scorer_name)
    for kind, cls in (("self_id", SelfIdScorer), ("quirks", QuirksScorer), ("ngram", NgramScorer)):
        if isinstance(sc, cls):
            return kind
    return None


# --- self-identification --------------------------------------------------------------------

def claim_label(feature: list[str], display: dict[str, str]) -> str:
    """'Atlas', 'Atlas + OpenAI' or 'no claim' for one response's claimed makers."""
    return " + ".join(display.get(k, k) for k in feature) if feature else NO_CLAIM


def self_id_details(data: "BatteryData", order: list[str]) -> dict[str, Any]:
    """Per model and prompt language: how many responses claim which maker(s)."""
    from ..scorers import get_scorer

    display = get_scorer(data.battery.scorer).lexicon.display
    lang = {p.id: p.language for p in data.battery.prompts}
    languages = sorted({lang[pid] for pid in data.prompt_ids})
    claims = []
    for label in order:
        by_lang: dict[str, Counter] = defaultdict(Counter)
        for pid, feats in zip(data.prompt_ids, data.features[label]):
            for f in feats:
                by_lang[lang[pid]][claim_label(f, display)] += 1
        for language in languages:
            c = by_lang.get(language, Counter())
            claims.append({"model": label, "language": language, "responses": sum(c.values()),
                           "counts": dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))})
    return {"battery": data.battery.name, "scorer": data.battery.scorer, "kind": "self_id",
            "languages": languages, "claims": claims}


# --- quirks ---------------------------------------------------------------------------------

def _group_of(prompt) -> str:
    return prompt.tags.get("kind") or prompt.tags.get("bucket") or prompt.id


def quirk_details(data: "BatteryData", order: list[str], top: int = TOP_ANSWERS) -> dict[str, Any]:
    """Per kind of question (the prompt's ``kind`` tag, else its ``bucket``, else its id): each
    model's answer counts, its ``top`` most frequent answers by name and the rest as 'other'."""
    by_id = {p.id: p for p in data.battery.prompts}
    groups: dict[str, dict[str, Any]] = {}
    for i, pid in enumerate(data.prompt_ids):
        g = groups.setdefault(_group_of(by_id[pid]), {"prompts": [], "counts": {m: Counter() for m in order}})
        g["prompts"].append(pid)
        for label in order:
            for f in data.features[label][i]:
                g["counts"][label][NO_ANSWER if f is None else str(f)] += 1
    out = []
    for name, g in groups.items():
        answers = {}
        for label in order:
            c = g["counts"][label]
            named = [a for a, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])) if a != NO_ANSWER][:top]
            kept = {a: c[a] for a in named}
            rest = sum(n for a, n in c.items() if a not in kept and a != NO_ANSWER)
            if rest:
                kept[OTHER] = rest
            if c.get(NO_ANSWER):
                kept[NO_ANSWER] = c[NO_ANSWER]
            answers[label] = kept
        out.append({"group": name, "prompts": g["prompts"], "answers": answers})
    return {"battery": data.battery.name, "scorer": data.battery.scorer, "kind": "quirks", "groups": out}


def match_rate(p: dict[str, int], q: dict[str, int]) -> float | None:
    """Chance that one answer of each model agrees, from answer counts (named answers only:
    'other' and 'no answer' never match). None when either has no answer."""
    n_p = sum(v for k, v in p.items() if k != NO_ANSWER)
    n_q = sum(v for k, v in q.items() if k != NO_ANSWER)
    if not n_p or not n_q:
        return None
    return sum(v * q.get(k, 0) for k, v in p.items() if k not in (OTHER, NO_ANSWER)) / (n_p * n_q)


# --- n-grams --------------------------------------------------------------------------------

def _grams(feature, n: int) -> set[str]:
    if isinstance(feature, dict):  # a prepared feature {n: set}
        return set(feature.get(n, ()))
    return {g for g in feature if g.count(" ") == n - 1}


def ngram_details(data: "BatteryData", candidate: str, references: list[str], controls: list[str],
                  top: int = TOP_NGRAMS) -> dict[str, Any]:
    """Per reference, the word n-grams (the scorer's longest size) that the candidate and the
    reference both used on a prompt while no control used them on that prompt, counted over
    prompts; with how many prompts any control used each one on (anywhere in the battery)."""
    from ..analysis import RecomputedFeatures
    from ..scorers import get_scorer

    scorer = get_scorer(data.battery.scorer)
    n = max(scorer.ns)

    recomputed = isinstance(data.features, RecomputedFeatures)

    def grams_on(label: str, i: int) -> set[str]:
        """``label``'s n-grams of the longest size on prompt ``i``, over its samples (from the
        text where features are not held)."""
        if recomputed:
            return set().union(*(scorer.grams(r.text, n) for r in data.responses[label][i]))
        return set().union(*(_grams(f, n) for f in data.features[label][i]))

    # a prompt at a time, so no model's n-grams are held for the whole battery
    prompts = range(len(data.prompt_ids))
    found: dict[str, Counter] = {ref: Counter() for ref in references}
    for i in prompts:
        cand = grams_on(candidate, i)
        ctl_any = set().union(*(grams_on(k, i) for k in controls))
        for ref in references:
            found[ref].update((cand & grams_on(ref, i)) - ctl_any)
    # on how many prompts any control used each of those n-grams (a second pass, for them alone)
    wanted = set().union(*found.values())
    ctl_prompts: Counter = Counter()
    if controls and wanted:
        for i in prompts:
            ctl_prompts.update(wanted & set().union(*(grams_on(k, i) for k in controls)))
    shared = []
    for ref in references:
        counts = found[ref]
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], ctl_prompts[kv[0]], kv[0]))[:top]
        shared.append({"reference": ref, "ngrams": [
            {"ngram": g, "shared_prompts": k, "control_prompts": ctl_prompts[g] if controls else None}
            for g, k in ranked]})
    return {"battery": data.battery.name, "scorer": data.battery.scorer, "kind": "ngram", "n": n,
            "n_controls": len(controls), "shared": shared}


# --- sections of report.json ----------------------------------------------------------------

def details_section(datas: list["BatteryData"], candidate: str, references: list[str],
                    controls: list[str]) -> list[dict[str, Any]]:
    """The ``details`` entries of report.json, one per battery whose scorer has a view."""
    order = [candidate, *references, *controls]
    out = []
    for d in datas:
        kind = scorer_kind(d.battery.scorer)
        if kind == "self_id":
            out.append(self_id_details(d, order))
        elif kind == "quirks":
            out.append(quirk_details(d, order))
        elif kind == "ngram":
            out.append(ngram_details(d, candidate, references, controls))
    return out


def details_caveats(details: list[dict[str, Any]]) -> list[str]:
    """Caveats that the details show: a self-ID battery answered in one language only."""
    out = []
    for d in details:
        if d["kind"] == "self_id" and len(d["languages"]) == 1:
            out.append(f"Battery {d['battery']}: every self-identification prompt is in one language "
                       f"({d['languages'][0]}); how a model names itself in other languages was not measured.")
    return out


def usage_section(datas: list["BatteryData"], store: "Store", model_keys: dict[str, set[str]]) -> dict[str, Any]:
    """Responses, tokens, generation seconds, API calls and cost per model, from the store:
    the responses this report rests on, and every logged API call of those models' keys."""
    per_model = {}
    for label in (datas[0].responses if datas else {}):
        rs = [r for d in datas for per in d.responses[label] for r in per]
        keys = sorted(model_keys.get(label, ()))
        calls = [e for k in keys for e in store.request_log(k)]
        costs = [e["cost"] for e in calls if e.get("cost") is not None]
        tin = [r.tokens_in for r in rs if r.tokens_in is not None]
        tout = [r.tokens_out for r in rs if r.tokens_out is not None]
        secs = [r.seconds for r in rs if r.seconds is not None]
        per_model[label] = {
            "responses": len(rs),
            "tokens_in": sum(tin) if tin else None,
            "tokens_out": sum(tout) if tout else None,
            "seconds": round(sum(secs), 6) if secs else None,
            "api_calls": len(calls),
            "cost": round(sum(costs), 10) if costs else None,
        }

    def total(field):
        vals = [m[field] for m in per_model.values() if m[field] is not None]
        if not vals:
            return 0 if field in ("responses", "api_calls") else None
        s = sum(vals)
        return round(s, 10) if isinstance(s, float) else s

    return {"per_model": per_model,
            "total": {f: total(f) for f in ("responses", "tokens_in", "tokens_out", "seconds", "api_calls", "cost")},
            "note": "responses, tokens and generation seconds of the stored answers this report rests on; API "
                    "calls (retries included) and their cost from the store's evidence log"}


# --- per-prompt scores ----------------------------------------------------------------------

def score_rows(datas: list["BatteryData"], roles: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every per-prompt score: each pair of models (a before b in the report's order) and each
    model against its own other samples (a == b, the ceiling); score None where undefined."""
    rows = []
    roles = roles or {}
    for d in datas:
        table = d.table()
        labels = list(d.features)
        keys = d.prompt_keys()
        columns = []
        for i, a in enumerate(labels):
            columns.append((a, a, table.ceiling(a)))
            columns += [(a, b, table.s(a, b)) for b in labels[i + 1:]]
        for j, pid in enumerate(d.prompt_ids):
            for a, b, v in columns:
                x = float(v[j])
                rows.append({"battery": d.battery.name, "prompt_id": pid, "prompt_key": keys[j], "model_a": a,
                             "role_a": roles.get(a, ""), "model_b": b, "role_b": roles.get(b, ""),
                             "score": x if math.isfinite(x) else None})
    return rows


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # shortest round-trip form: the CSV holds the exact numbers
    return str(v)


def write_scores_csv(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write :func:`score_rows` to ``path`` (an empty score is an empty field)."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(SCORE_COLUMNS)
        for r in rows:
            w.writerow([_csv_value(r[c]) for c in SCORE_COLUMNS])
    return path


def read_scores_csv(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a scores.csv, scores as floats (None where empty)."""
    with Path(path).open(encoding="utf-8", newline="") as f:
        return [{**r, "score": float(r["score"]) if r["score"] else None} for r in csv.DictReader(f)]
