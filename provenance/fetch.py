"""Collecting from API models: many calls at once, each answer committed as it arrives.

:func:`collect_remote` is what :func:`provenance.collect.collect` hands API models to. For
every missing (model, prompt, sample) it makes one call, at most ``max_concurrency`` at a
time per endpoint (per replica, where a model has several base URLs: each attempt goes to
the usable replica with the fewest calls on it, and one that fails is left out for a while),
retried by tenacity (exponential backoff with full jitter, ``Retry-After``
honoured and applied to the whole endpoint, a finite number of attempts). The answer and its
evidence-log entry are committed in one transaction the moment it arrives; every failed
attempt is logged too. A fatal error stops that model at once and the others go on.

Caps (:class:`Limits`) stop the run cleanly: ``max_cost`` reserves each call's worst case
(input bytes + 16 tokens, ``max_new_tokens`` out) before sending it and never starts a call
that could cross the cap while nothing else is in flight to free room; ``max_requests``
counts HTTP calls, retries included. What was stored stays; the next run resumes.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential
from tenacity.stop import stop_base

from .errors import ModelError
from .models.base import Completion, Request, SamplingSettings
from .models.remote import Endpoint, FatalError, RemoteError, RemoteModel, Replicas, TransientError, now_iso, says_down

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class Limits:
    """Caps of one run: USD spent and HTTP calls made by API models."""

    max_cost: float | None = None
    max_requests: int | None = None


class _Abandon(Exception):
    """The call is not made: its model failed or a cap was reached."""


class Budget:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.spent = 0.0
        self.reserved = 0.0
        self.in_flight = 0
        self.calls = 0
        self.stopped: str | None = None
        self._cond = asyncio.Condition()

    async def reserve(self, worst: float) -> bool:
        """Room for a call that may cost ``worst``; waits for calls in flight to settle."""
        cap = self.limits.max_cost
        async with self._cond:
            while True:
                if self.stopped:
                    return False
                if cap is None or self.spent + self.reserved + worst <= cap:
                    self.reserved += worst
                    self.in_flight += 1
                    return True
                if self.in_flight == 0:
                    self.stopped = "max-cost"
                    self._cond.notify_all()
                    return False
                await self._cond.wait()

    async def settle(self, worst: float, actual: float) -> None:
        async with self._cond:
            self.reserved -= worst
            self.in_flight -= 1
            self.spent += actual
            self._cond.notify_all()

    def take_call(self) -> bool:
        cap = self.limits.max_requests
        if self.stopped:
            return False
        if cap is not None and self.calls >= cap:
            self.stopped = "max-requests"
            return False
        self.calls += 1
        return True


class _StopAttempts(stop_base):
    """Stop after ``max_attempts``; refused connections while no replica has ever answered
    stop after ``connect_attempts`` (one more per further replica): an unreachable base URL."""

    def __init__(self, model: RemoteModel, replicas: Replicas):
        self.model, self.replicas = model, replicas
        self._after = stop_after_attempt(model.transport.max_attempts)

    def __call__(self, retry_state) -> bool:
        if self._after(retry_state):
            return True
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return (isinstance(exc, RemoteError) and exc.kind == "connect" and not self.replicas.ever_ok
                and retry_state.attempt_number >= self.model.transport.connect_attempts + len(self.replicas) - 1)


class _Wait:
    """``Retry-After`` when the server gave one, else exponential backoff with full jitter."""

    def __init__(self, model: RemoteModel):
        t = model.transport
        self.cap = t.max_retry_after
        self.backoff = wait_random_exponential(multiplier=t.backoff_initial, max=t.backoff_max)

    def __call__(self, retry_state) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RemoteError) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return self.backoff(retry_state)


async def call_with_retries(model: RemoteModel, replicas: Replicas, request: Request,
                            sampling: SamplingSettings, *, budget: Budget | None = None,
                            should_abandon: Callable[[], bool] = lambda: False,
                            on_failure: Callable[[int, RemoteError, float, str], None] | None = None
                            ) -> tuple[Completion, dict[str, Any], int]:
    """One request, retried; each attempt goes to the replica :meth:`Replicas.acquire` picks
    (so a call that failed on one replica is retried on another). Returns (completion, call
    info with the ``endpoint`` that answered, attempts made). ``on_failure(attempt, error,
    seconds, endpoint)`` sees every failed attempt. Raises :class:`FatalError`,
    :class:`TransientError` (attempts exhausted) or :class:`_Abandon`."""
    n = 0
    async for attempt in AsyncRetrying(stop=_StopAttempts(model, replicas), wait=_Wait(model),
                                       retry=retry_if_exception_type(TransientError), reraise=True):
        with attempt:
            if should_abandon():
                raise _Abandon()
            ep, probe = await replicas.acquire()
            try:
                await ep.wait_ready()  # a Retry-After pauses every call to this endpoint
                if should_abandon() or (budget is not None and not budget.take_call()):
                    raise _Abandon()
                n += 1
                ep.in_flight += 1
                ep.peak_in_flight = max(ep.peak_in_flight, ep.in_flight)
                t0 = time.perf_counter()
                try:
                    completion, info = await model.acomplete(request, sampling, base_url=ep.url)
                except RemoteError as e:
                    if e.retry_after:
                        ep.pause(min(e.retry_after, model.transport.max_retry_after))
                    if says_down(e):
                        ep.mark_down(model.transport, probe)  # left out for a while (replicas)
                    else:
                        ep.mark_up()  # it answered: up, if unwilling
                    if on_failure is not None:
                        on_failure(n, e, time.perf_counter() - t0, ep.url)
                    raise
                finally:
                    ep.in_flight -= 1
            finally:
                replicas.release(ep, probe)
            ep.ever_ok = True
            ep.mark_up()
            return completion, {**info, "endpoint": ep.url}, n
    raise AssertionError("unreachable")  # pragma: no cover


def _worst_cost(model: RemoteModel, request: Request, sampling: SamplingSettings) -> float:
    if model.prices is None:
        return 0.0
    system = request.system_prompt if request.system_prompt is not None else model.system_prompt
    est_in = len(request.prompt.encode()) + len((system or "").encode()) + 16
    return model.prices.cost(est_in, sampling.max_new_tokens)


def collect_remote(work: list[tuple[str, RemoteModel, Any, str, list[Request]]], store: "Store", stats: Any, *,
                   limits: Limits | None = None, advance: Callable[[str, str, int], None] | None = None) -> None:
    """Collect ``work`` items (label, model, battery, model key, missing requests) into
    ``store``. Fills ``stats`` (a :class:`~provenance.collect.CollectStats`): requests,
    cost_usd, api_calls, retries, stopped (a sentence, or None), failed (label -> sentence)."""
    limits = limits or Limits()
    for _, m, *_ in work:
        m.check_ready()
    if limits.max_cost is not None:
        unpriced = [f"{m.provider}/{m.name}" for _, m, *_ in work if m.prices is None]
        if unpriced:
            from .errors import SpecError

            raise SpecError(f"--max-cost needs prices for {', '.join(unpriced)}; add options.prices = "
                            f"{{input = USD per 1M tokens, output = USD per 1M tokens}} to the audit file")
    asyncio.run(_collect(work, store, stats, limits, advance))


async def _collect(work, store, stats, limits: Limits, advance) -> None:
    # Every store call of the collection runs, in order, on one worker thread: SQLite releases
    # the GIL while it writes, so commits no longer hold up the event loop that makes the calls
    # (at 32 calls in flight on 2 cores that is several percent of throughput). Still one
    # transaction per call, as before: an answer is committed the moment it arrives.
    loop = asyncio.get_running_loop()
    store_io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="provenance-store")
    logs: list[asyncio.Future] = []

    def io(fn, *args, **kw) -> asyncio.Future:
        return loop.run_in_executor(store_io, functools.partial(fn, *args, **kw))

    try:
        await _collect_on(work, store, stats, limits, advance, io, logs)
    finally:
        if logs:
            await asyncio.gather(*logs, return_exceptions=True)
        store_io.shutdown(wait=True)


async def _collect_on(work, store, stats, limits: Limits, advance, io, logs) -> None:
    budget = Budget(limits)
    run_id = uuid.uuid4().hex[:16]
    endpoints: dict[str, Endpoint] = {}
    failed: dict[str, str] = {}
    totals = {"wanted": 0, "stored": 0}

    async def one(label: str, model: RemoteModel, battery_name: str, key: str, sampling: SamplingSettings,
                  ph: str, r: Request, ep: Replicas) -> bool:
        """Ask for one answer and store it. False when another audit sharing the store is
        asking for it right now (try again later)."""
        async with ep.admission:  # claim only what is about to be sent, so leases stay fresh
            return await take(label, model, battery_name, key, sampling, ph, r, ep)

    async def take(label: str, model: RemoteModel, battery_name: str, key: str, sampling: SamplingSettings,
                   ph: str, r: Request, ep: Replicas) -> bool:
        if label in failed or budget.stopped:
            return True
        t = model.transport
        claim = await io(store.claim, key, ph, r.sample, run_id, lease=t.max_attempts * (t.timeout + t.backoff_max) + 60)
        if claim == "busy":
            return False
        if claim == "answered":  # another audit sharing the store answered it meanwhile
            stats.cached += 1
            if advance:
                advance(label, battery_name, 1)
            return True
        stored = False
        try:
            stored = await ask(label, model, battery_name, key, sampling, ph, r, ep)
        finally:
            if not stored:
                await io(store.release_claims, run_id, (key, ph, r.sample))
        return True

    async def ask(label: str, model: RemoteModel, battery_name: str, key: str, sampling: SamplingSettings,
                  ph: str, r: Request, ep: Replicas) -> bool:
        """True once the answer is stored (and the claim on it dropped)."""
        worst = _worst_cost(model, r, sampling)
        if not await budget.reserve(worst):
            return False
        settings = model.request_settings(r, sampling)
        base = {"run_id": run_id, "model_key": key, "model": model.name,
                "prompt_hash": ph, "sample": r.sample, "settings": settings}

        def on_failure(attempt: int, e: RemoteError, seconds: float, endpoint: str) -> None:
            stats.api_calls += 1
            entry = {**base, "endpoint": endpoint, "time": now_iso(), "attempt": attempt, "status": e.status,
                     "outcome": ("fatal:" if isinstance(e, FatalError) else "retry:") + e.kind,
                     "error": model.redact(str(e))[:300], "seconds": round(seconds, 4)}
            # queued on the store's thread, in order: written before anything this call stores later
            logs.append(io(store.log_request, entry))

        try:
            completion, info, attempts = await call_with_retries(
                model, ep, r, sampling, budget=budget, on_failure=on_failure,
                should_abandon=lambda: label in failed or budget.stopped is not None)
        except _Abandon:
            await budget.settle(worst, 0.0)
            return False
        except RemoteError as e:
            await budget.settle(worst, 0.0)
            if isinstance(e, FatalError):
                why = model.redact(str(e))
            else:
                why = f"still failing after the last attempt: {model.redact(str(e))}"
            failed.setdefault(label, f"{model.provider}/{model.name} ({label}): {why}")
            return False
        except BaseException:
            await budget.settle(worst, 0.0)
            raise
        stats.api_calls += 1
        stats.retries += attempts - 1
        cost = None
        if model.prices is not None:  # no usage in the answer: count the worst case, so caps still hold
            known = completion.tokens_in is not None and completion.tokens_out is not None
            cost = model.prices.cost(completion.tokens_in, completion.tokens_out) if known else worst
        actual = cost or 0.0
        entry = {**base, "endpoint": info["endpoint"], "time": info.get("time") or now_iso(),
                 "attempt": attempts, "status": 200, "outcome": "ok",
                 "response_id": info.get("response_id"), "served_model": info.get("served_model"),
                 "tokens_in": completion.tokens_in, "tokens_out": completion.tokens_out, "cost": cost,
                 "seconds": round(completion.seconds or 0.0, 4)}
        try:
            inserted = await io(store.put_logged, key, (ph, r.prompt_id, r.sample, r.prompt, r.seed, completion),
                                entry, claim_owner=run_id)
        finally:
            await budget.settle(worst, actual)
        stats.requests += 1
        stats.cost_usd += actual
        pm = stats.per_model.setdefault(label, {"requests": 0, "cached": 0, "seconds": 0.0})
        pm["requests"] += 1
        pm["seconds"] += completion.seconds or 0.0
        totals["stored"] += inserted
        if advance:
            advance(label, battery_name, 1)
        return True

    tasks = []
    models = {}
    groups: dict[tuple[str, ...], Replicas] = {}
    for label, model, battery, key, missing in work:
        urls = tuple(model.endpoint_urls)
        ep = groups.get(urls)
        if ep is None:  # endpoints are shared by URL; a set of replicas by its URLs
            for u in urls:
                if u not in endpoints:
                    endpoints[u] = Endpoint(u, model.transport.max_concurrency).bind()
            ep = groups[urls] = Replicas([endpoints[u] for u in urls])
        models[id(model)] = model
        hashes = {p.id: battery.prompt_hash(p) for p in battery.prompts}
        sampling = battery.generation.sampling
        totals["wanted"] += len(missing)
        for r in missing:
            tasks.append((label, model, battery.name, key, sampling, hashes[r.prompt_id], r, ep))
    try:
        done = await asyncio.gather(*(one(*args) for args in tasks))
        waiting = [args for args, ok in zip(tasks, done) if not ok]
        while waiting:  # answers another audit on this store is asking for: wait, take over if it dies
            await asyncio.sleep(0.25)
            done = await asyncio.gather(*(one(*args) for args in waiting))
            waiting = [args for args, ok in zip(waiting, done) if not ok]
    finally:
        await io(store.release_claims, run_id)
        for m in models.values():
            await m.aclose()
    stats.failed.update(failed)
    stats.peak_in_flight = max([stats.peak_in_flight] + [e.peak_in_flight for e in endpoints.values()])
    if budget.stopped:
        left = totals["wanted"] - totals["stored"]
        if budget.stopped == "max-cost":
            stats.stopped = (f"stopped at --max-cost {limits.max_cost:g} USD: {budget.spent:.4f} USD spent in this run, "
                             f"{totals['stored']} answers stored, {left} still missing; run the same command again "
                             f"(with a higher --max-cost, or none) to resume")
        else:
            stats.stopped = (f"stopped at --max-requests {limits.max_requests}: {budget.calls} API calls made in this "
                             f"run, {totals['stored']} answers stored, {left} still missing; run the same command "
                             f"again to resume")


def run_requests(model: RemoteModel, requests: list[Request], sampling: SamplingSettings) -> list[Completion | None]:
    """Answer ``requests`` (no store): the synchronous ``generate`` of API models."""

    model.check_ready()

    async def main():
        ep = Replicas([Endpoint(u, model.transport.max_concurrency) for u in model.endpoint_urls])
        try:
            results = await asyncio.gather(*(call_with_retries(model, ep, r, sampling) for r in requests),
                                           return_exceptions=True)
        finally:
            await model.aclose()
        out = []
        for res in results:
            if isinstance(res, RemoteError):
                raise ModelError(f"{model.provider}/{model.name}: {model.redact(str(res))}")
            if isinstance(res, BaseException):
                raise res
            out.append(res[0])
        return out

    return asyncio.run(main())
