"""collect: the only step that asks models anything.

For every (model, battery prompt, sample) not yet in the store, build a seeded request, ask
the model in batches, and commit each batch as it arrives. What is already stored is never
asked again, so an interrupted audit resumes where it stopped and a finished one re-runs
without any model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .models.base import Model, Request, sample_seed
from .store import Store

if TYPE_CHECKING:
    from .battery import Battery


@dataclass
class CollectStats:
    requests: int = 0
    cached: int = 0
    unanswerable: int = 0
    seconds: float = 0.0
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)
    # API models (provenance.fetch): HTTP calls made, of them retries, USD spent, the
    # sentence saying why a cap stopped the run, label -> why a model was stopped
    api_calls: int = 0
    retries: int = 0
    cost_usd: float = 0.0
    peak_in_flight: int = 0
    stopped: str | None = None
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"requests": self.requests, "cached": self.cached, "unanswerable": self.unanswerable,
                "seconds": round(self.seconds, 3), "per_model": self.per_model}

    def api_summary(self) -> dict:
        """What API models cost this run (not yet part of the report schema)."""
        return {"api_calls": self.api_calls, "retries": self.retries, "cost_usd": round(self.cost_usd, 6),
                "peak_in_flight": self.peak_in_flight, "stopped": self.stopped, "failed": dict(self.failed)}


def plan(model: Model, battery: "Battery", store: Store, *, seed: int, samples: int | None = None) -> tuple[str, list[Request], int]:
    """(model key, requests still missing, number already stored) for one model and battery."""
    sampling = battery.generation.sampling
    key = model.key(sampling)
    n_samples = samples or battery.generation.samples
    have = store.existing(key)
    missing, cached = [], 0
    for prompt in battery.prompts:
        ph = battery.prompt_hash(prompt)
        for s in range(n_samples):
            if (ph, s) in have:
                cached += 1
            else:
                missing.append(Request(prompt_id=prompt.id, prompt=prompt.text, sample=s,
                                       seed=sample_seed(seed, key, ph, s), system_prompt=model.system_prompt))
    return key, missing, cached


def collect(models: dict[str, Model], batteries: list["Battery"], store: Store, *, seed: int,
            samples: int | None = None, chunk: int = 64, progress: bool = True, limits=None,
            executor=None) -> CollectStats:
    """Ask every model every battery prompt it has not answered yet; store as answers arrive.

    ``executor`` (:mod:`provenance.executors`) decides where local models generate: None or a
    local executor here, in this process; a Ray executor on the actors of a Ray cluster. Either
    way this process plans what is missing and alone writes the store."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    stats = CollectStats()
    t_all = time.perf_counter()
    work = []
    for label, model in models.items():
        stats.per_model[label] = {"requests": 0, "cached": 0, "seconds": 0.0}
        for battery in batteries:
            key, missing, cached = plan(model, battery, store, seed=seed, samples=samples)
            store.register_model(key, model.identity(), battery.generation.sampling.model_dump())
            stats.cached += cached
            stats.per_model[label]["cached"] += cached
            work.append((label, model, battery, key, missing))

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        tasks = {}
        for label, model, battery, key, missing in work:
            if missing:
                tasks[(label, battery.name)] = bar.add_task(f"{label} · {battery.name}", total=len(missing))

        def advance(label: str, name: str, n: int) -> None:
            bar.advance(tasks[(label, name)], n)

        local = [w for w in work if w[4] and not getattr(w[1], "remote", False)]
        if executor is not None and getattr(executor, "distributed", False):
            # generating models run on the executor's workers; transcripts are read here
            executor.run([w for w in local if w[1].generates], store, stats, advance)
            local = [w for w in local if not w[1].generates]
        collect_local(local, store, stats, advance, chunk=chunk)
        remote = [w for w in work if w[4] and getattr(w[1], "remote", False)]
        if remote:  # API models: concurrent calls, each answer committed as it arrives
            from .fetch import collect_remote

            collect_remote(remote, store, stats, limits=limits, advance=advance)
    stats.seconds = time.perf_counter() - t_all
    return stats


def batches(battery: "Battery", missing: list[Request], chunk: int) -> list[list[Request]]:
    """The missing requests of one model and battery in chunks of similar prompt length."""
    missing = sorted(missing, key=lambda r: (len(r.prompt), r.prompt_id, r.sample))
    return [missing[start : start + chunk] for start in range(0, len(missing), chunk)]


def prompt_hashes(battery: "Battery") -> dict[str, str]:
    return {p.id: battery.prompt_hash(p) for p in battery.prompts}


def store_batch(store: Store, stats: CollectStats, label: str, model: Model, key: str, by_hash: dict[str, str],
                batch: list[Request], answers: list, seconds: float) -> int:
    """Commit one batch's answers (one transaction) and count them; returns rows stored."""
    rows = [(by_hash[r.prompt_id], r.prompt_id, r.sample, r.prompt, r.seed, a)
            for r, a in zip(batch, answers) if a is not None]
    store.put_many(key, rows)
    if model.generates:
        stats.requests += len(batch)
        stats.per_model[label]["requests"] += len(batch)
    stats.unanswerable += len(batch) - len(rows)
    stats.per_model[label]["seconds"] += seconds
    return len(rows)


def collect_local(work: list, store: Store, stats: CollectStats, advance, *, chunk: int = 64) -> None:
    """The local executor: each model generates here, batch after batch, each batch stored
    as soon as it is answered."""
    for label, model, battery, key, missing in work:
        by_hash = prompt_hashes(battery)
        for batch in batches(battery, missing, chunk):
            t0 = time.perf_counter()
            answers = model.generate(batch, battery.generation.sampling)
            store_batch(store, stats, label, model, key, by_hash, batch, answers, time.perf_counter() - t0)
            advance(label, battery.name, len(batch))
