"""score + stats: from stored responses to per-prompt pair scores and estimates.

For each battery the scorer turns every stored response into a feature; per prompt it then
scores model pairs: candidate vs reference s(C, R), each control vs the reference s(K, R), and
the reference against its own fresh samples (the ceiling). The excess of the candidate over
the reference-side baseline b(R) = mean_K s(K, R) is estimated paired over prompts, with a
cluster bootstrap over prompts. Each control is also scored as if it were the candidate
(leave-one-out baseline), which shows what "no relation" looks like on the same prompts.

Nothing here calls a model: it all runs from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import stats
from .scorers import get_scorer
from .store import Store, StoredResponse

if TYPE_CHECKING:
    from .battery import Battery
    from .models.base import Model

BASELINE_DESCRIPTION = "reference side: b(R) = mean over controls K of s(K, R), on the same prompts"
EVIDENCE_PROMPTS = 3


@dataclass
class BatteryData:
    """Features of every model's responses to one battery, on the prompts all models answered."""

    battery: "Battery"
    prompt_ids: list[str]
    features: dict[str, list[list[Any]]]  # label -> per prompt -> per sample
    responses: dict[str, list[list[StoredResponse]]]  # label -> per prompt -> per sample
    excluded: dict[str, int] = field(default_factory=dict)  # label -> empty responses left out


def load_battery_data(battery: "Battery", models: dict[str, "Model"], store: Store, *,
                      samples: int | None = None) -> BatteryData:
    scorer = get_scorer(battery.scorer)
    sampling = battery.generation.sampling
    n_samples = samples or battery.generation.samples
    by_id = {p.id: p for p in battery.prompts}
    hashes = {battery.prompt_hash(p): p.id for p in battery.prompts}
    per_model: dict[str, dict[str, list[StoredResponse]]] = {}
    excluded: dict[str, int] = {}
    for label, model in models.items():
        grouped: dict[str, list[StoredResponse]] = {}
        for r in store.responses(model.key(sampling), hashes):
            if r.sample >= n_samples:
                continue
            if not r.text.strip():
                excluded[label] = excluded.get(label, 0) + 1
                continue
            grouped.setdefault(hashes[r.prompt_hash], []).append(r)
        per_model[label] = grouped
    shared = [p.id for p in battery.prompts if all(p.id in per_model[m] for m in models)]
    features = {m: [[scorer.features(r.text, by_id[pid]) for r in per_model[m][pid]] for pid in shared] for m in models}
    responses = {m: [per_model[m][pid] for pid in shared] for m in models}
    return BatteryData(battery, shared, features, responses, excluded)


def pair_scores(data: BatteryData, a: str, b: str) -> np.ndarray:
    """Per-prompt similarity of models ``a`` and ``b`` (NaN where undefined)."""
    scorer = get_scorer(data.battery.scorer)
    return np.array([scorer.similarity(x, y) for x, y in zip(data.features[a], data.features[b])], dtype=float)


def self_scores(data: BatteryData, a: str) -> np.ndarray:
    scorer = get_scorer(data.battery.scorer)
    return np.array([scorer.self_similarity(x) for x in data.features[a]], dtype=float)


def analyse_battery(data: BatteryData, candidate: str, references: list[str], controls: list[str], *,
                    confidence_level: float, n_resamples: int, seed: int) -> list[dict]:
    """One result row per reference: similarity, baseline, excess, ceiling, control rows."""
    opts = dict(confidence_level=confidence_level, n_resamples=n_resamples)
    rows = []
    for ref in references:
        s_cr = pair_scores(data, candidate, ref)
        s_kr = {k: pair_scores(data, k, ref) for k in controls}
        row: dict[str, Any] = {
            "battery": data.battery.name,
            "reference": ref,
            "n_prompts": int(np.sum(~np.isnan(s_cr))),
            "similarity": stats.bootstrap_mean(s_cr, rng=seed, **opts).to_dict(),
            "baseline": None,
            "excess": None,
            "ceiling": None,
            "controls": [],
        }
        ceiling = self_scores(data, ref)
        if np.sum(~np.isnan(ceiling)) >= 2:
            row["ceiling"] = stats.bootstrap_mean(ceiling, rng=seed, **opts).to_dict()
        if controls:
            base = np.column_stack([s_kr[k] for k in controls])
            row["baseline"] = stats.bootstrap_mean(np.nanmean(base, axis=1) if base.size else base, rng=seed,
                                                   **opts).to_dict()
            row["excess"] = stats.paired_excess(s_cr, base, rng=seed, **opts).to_dict()
        for k in controls:
            others = [o for o in controls if o != k]
            entry = {"control": k, "similarity": stats.bootstrap_mean(s_kr[k], rng=seed, **opts).to_dict(),
                     "excess": None}
            if others:
                entry["excess"] = stats.paired_excess(s_kr[k], np.column_stack([s_kr[o] for o in others]),
                                                      rng=seed, **opts).to_dict()
            row["controls"].append(entry)
        rows.append(row)
    return rows


def evidence(data: BatteryData, candidate: str, references: list[str], controls: list[str],
             roles: dict[str, str], *, top: int = EVIDENCE_PROMPTS) -> list[dict]:
    """The verbatim responses behind the prompts where the candidate is closest to each
    reference beyond the controls."""
    scorer = get_scorer(data.battery.scorer)
    by_id = {p.id: p for p in data.battery.prompts}
    out = []
    for ref in references:
        s_cr = pair_scores(data, candidate, ref)
        base = np.nanmean(np.column_stack([pair_scores(data, k, ref) for k in controls]), axis=1) if controls \
            else np.zeros_like(s_cr)
        gap = np.where(np.isnan(s_cr - base), -np.inf, s_cr - base)
        for i in np.argsort(-gap, kind="stable")[:top]:
            if not np.isfinite(gap[i]) or gap[i] <= 0:
                break
            shown = [candidate, ref] + controls[:1]
            responses = []
            for label in shown:
                r = data.responses[label][i][0]
                responses.append({"model": label, "role": roles[label], "sample": r.sample, "text": r.text,
                                  "content_hash": r.content_hash, "store_key": r.store_key,
                                  "feature": scorer.describe(data.features[label][i][0])})
            pid = data.prompt_ids[i]
            out.append({"battery": data.battery.name, "prompt_id": pid, "prompt": by_id[pid].text,
                        "reason": f"similarity to {ref} {s_cr[i]:.2f} against control mean {base[i]:.2f}",
                        "responses": responses})
    return out
