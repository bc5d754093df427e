"""Executors: where local models generate during collect.

* ``local`` (the default): in this process, batch after batch (:func:`provenance.collect.collect_local`).
* ``ray``: on a Ray cluster. Each model gets ``workers`` Ray actors (replicas), each asking for
  ``num_cpus``/``num_gpus`` and loading the model once with :func:`provenance.models.load_model`.
  The driver (this process) plans what is missing exactly as the local path does, fans the
  batches out to the actors, takes answers back with ``ray.wait`` as they finish and writes
  each batch to the store at once. Only the driver writes the store, so resume and
  no-repeat hold as they do locally: a batch is sent again only if its answers never came
  back (its actor died), and a killed driver's next run plans from what is stored.

API models (``openai/``, ``anthropic/``) stay on the driver's concurrent path
(:mod:`provenance.fetch`) and transcripts are read on the driver: neither computes anything a
cluster could share out. ``ray`` is imported only when a Ray executor runs.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ModelError, ProvenanceError, SpecError

RAY_MISSING = "--executor ray needs ray: pip install 'provenance[ray]'"
#: environment variables a worker takes over from the driver (offline switches, caches)
PASS_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "TRANSFORMERS_VERBOSITY",
            "HF_HUB_DISABLE_PROGRESS_BARS")


class ExecutorSettings(BaseModel):
    """The ``[executor]`` table of an audit file, and the ``--executor``/``--address``/
    ``--ray-workers`` flags. Where answers are computed, never what they are: not part of the
    audit's identity, so it is kept out of the audit spec and its hash."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "ray"] = "local"
    #: Ray cluster to join ("auto", "HOST:PORT", "ray://HOST:10001"); none: start one here
    address: str | None = None
    #: Ray actors (model replicas) per model
    workers: int = Field(1, ge=1, le=4096)
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    #: requests per batch sent to an actor
    chunk: int = Field(32, ge=1, le=4096)
    #: deaths of a model's actors that are made good by starting another actor
    max_restarts: int = Field(3, ge=0, le=1000)


def executor_settings(data: dict[str, Any] | None, where: str = "executor") -> ExecutorSettings:
    try:
        return ExecutorSettings.model_validate(data or {})
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(table)"
        raise SpecError(f"{where}: executor.{loc}: {err['msg']}; see docs/scale-out.md") from None


def make_executor(settings: ExecutorSettings | None):
    """None for the local executor (today's path), else a :class:`RayExecutor`."""
    if settings is None or settings.kind == "local":
        return None
    _import_ray()  # say now, before any work, that ray is missing
    return RayExecutor(settings)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SpecError(RAY_MISSING) from None
    return ray


class ModelWorker:
    """A Ray actor holding one model replica (built lazily on the first batch, so a model
    that fails to load comes back as that batch's error, not as a dead actor)."""

    def __init__(self, model_string: str, options: dict[str, Any]):
        self.model_string, self.options = model_string, options
        self.model = None
        self.generated = 0

    def generate(self, requests: list, sampling) -> dict[str, Any]:
        from .models import load_model

        if self.model is None:
            self.model = load_model(self.model_string, **self.options)
        t0 = time.perf_counter()
        answers = self.model.generate(requests, sampling)
        self.generated += len(requests)
        return {"key": self.model.key(sampling), "answers": answers, "seconds": time.perf_counter() - t0,
                "pid": os.getpid(), "host": os.uname().nodename, "generated": self.generated}


@dataclass
class _Batch:
    label: str
    item: int  # index into the work list
    requests: list


@dataclass
class _Worker:
    name: str  # "<label>#<n>"
    label: str
    handle: Any
    inflight: set = field(default_factory=set)
    alive: bool = True


@dataclass
class BatchRecord:
    """One batch whose answers reached the driver and the store (for tests and benchmarks)."""

    worker: str
    pid: int
    host: str
    label: str
    key: str
    requests: list  # [(prompt_id, sample)]


def _portable(model) -> tuple[str, dict[str, Any]]:
    """(model string, options) to build ``model`` again on a worker: relative hf/ and
    transcripts/ paths made absolute (a worker's working directory is not the driver's)."""
    if model.source is None:
        raise ModelError(f"{model!r} was not built by load_model; the Ray executor cannot rebuild it on a worker")
    string, options = model.source
    provider, _, name = string.partition("/")
    path, hash_, frag = name.partition("#")
    if provider in ("hf", "transcripts") and not Path(path).is_absolute() and Path(path).exists():
        string = f"{provider}/{Path(path).resolve()}{hash_}{frag}"
    return string, dict(options)


def _reachable(address: str | None, timeout: float = 5.0) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers at fails here in seconds with
    one line; ray.init itself would retry for minutes."""
    import socket

    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SpecError(f"--address {address}: not a Ray address; give HOST:PORT, ray://HOST:10001 or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise SpecError(f"--address {address}: no Ray cluster answers there ({e.strerror or type(e).__name__}); "
                        f"start one with `ray start --head` or give its address") from None


class RayExecutor:
    """Generation on a Ray cluster; see the module docstring."""

    distributed = True

    def __init__(self, settings: ExecutorSettings, *, on_batch: Callable[[BatchRecord], None] | None = None,
                 prefetch: int = 2):
        self.settings = settings
        self.on_batch = on_batch
        self.prefetch = prefetch  # batches queued per actor, so it never idles between batches
        self.log: list[BatchRecord] = []
        self.deaths: list[str] = []  # workers lost during the run
        self.resent: list[tuple[str, int]] = []  # (worker that died holding it, requests) per batch sent again
        self.started: list[str] = []

    # -- the cluster -------------------------------------------------------------------------
    def _connect(self, ray) -> bool:
        """Join (or start) a cluster; True if this call started the connection."""
        if ray.is_initialized():
            return False
        import logging

        _reachable(self.settings.address)
        kw: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False, "namespace": "provenance"}
        try:
            if self.settings.address:
                ray.init(address=self.settings.address, **kw)
            else:
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = self.settings.address or "a local Ray instance"
            raise SpecError(f"--address {where}: could not join the Ray cluster ({str(e).splitlines()[0][:160]}); "
                            f"start one with `ray start --head` or give its address") from None
        return True

    def _check_resources(self, ray) -> None:
        total = ray.cluster_resources()
        for what, want in (("CPU", self.settings.num_cpus), ("GPU", self.settings.num_gpus)):
            have = max((n.get("Resources", {}).get(what, 0.0) for n in ray.nodes() if n.get("Alive")), default=0.0)
            if want > have:
                raise SpecError(f"each model worker asks for {want:g} {what}s but no node of the Ray cluster has "
                                f"that many (cluster total {total.get(what, 0.0):g}); lower executor.num_"
                                f"{what.lower()}s or add nodes")

    # -- running -----------------------------------------------------------------------------
    def run(self, work: list, store, stats, advance) -> None:
        """Generate every missing request of ``work`` (collect's (label, model, battery, key,
        missing) items) on the cluster and store each batch as it arrives."""
        if not work:
            return
        ray = _import_ray()
        started = self._connect(ray)
        try:
            self._check_resources(ray)
            self._run(ray, work, store, stats, advance)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, work, store, stats, advance) -> None:
        from ray.exceptions import ObjectLostError, RayActorError, RayTaskError, WorkerCrashedError

        from .collect import batches, prompt_hashes, store_batch

        s = self.settings
        # the actor is gone (killed, out of memory, its node lost) or its answer is: the batch was
        # never stored, so it goes to another actor (an actor only unreachable is ended too)
        died = (RayActorError, WorkerCrashedError, ObjectLostError)
        env = {"OMP_NUM_THREADS": str(max(1, int(s.num_cpus))),
               **{k: os.environ[k] for k in PASS_ENV if k in os.environ}}
        actor_cls = ray.remote(ModelWorker).options(num_cpus=s.num_cpus, num_gpus=s.num_gpus, max_restarts=0,
                                                    max_task_retries=0, runtime_env={"env_vars": env})
        queues: dict[str, deque] = {}
        sources, hashes = {}, []
        for i, (label, model, battery, key, missing) in enumerate(work):
            sources.setdefault(label, _portable(model))
            hashes.append(prompt_hashes(battery))
            queues.setdefault(label, deque()).extend(_Batch(label, i, b) for b in batches(battery, missing, s.chunk))
        workers: list[_Worker] = []
        n_started = {label: 0 for label in queues}
        lost = {label: 0 for label in queues}  # replicas that died, per model
        pending: dict[Any, tuple[_Worker, _Batch]] = {}

        def retire(w: _Worker) -> None:
            w.alive = False
            ray.kill(w.handle, no_restart=True)

        def fill() -> None:
            for label, q in queues.items():
                live = [w for w in workers if w.label == label and w.alive]
                # start a replica while the queue holds more than the live ones can take (so a
                # last batch sent back after a death does not start an actor for itself)
                while (q and len(live) < s.workers and lost[label] <= s.max_restarts
                       and len(q) > sum(self.prefetch - len(w.inflight) for w in live)):
                    string, options = sources[label]
                    n_started[label] += 1
                    w = _Worker(f"{label}#{n_started[label]}", label, actor_cls.remote(string, options))
                    workers.append(w)
                    live.append(w)
                    self.started.append(w.name)
                if q and not live:  # its replicas died more often than max_restarts allows
                    stats.failed[label] = (f"{label}: {lost[label]} of its Ray workers died, more than executor."
                                           f"max_restarts = {s.max_restarts} allows; see `ray logs` on the cluster")
                    q.clear()
                for w in live:
                    while q and len(w.inflight) < self.prefetch:
                        b = q.popleft()
                        ref = w.handle.generate.remote(b.requests, work[b.item][2].generation.sampling)
                        w.inflight.add(ref)
                        pending[ref] = (w, b)
                    if not q and not w.inflight:
                        retire(w)  # done: free its CPUs/GPUs for the actors of other models

        try:
            fill()
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    w, b = pending.pop(ref)
                    w.inflight.discard(ref)
                    label, model, battery, key, _ = work[b.item]
                    try:
                        out = ray.get(ref)
                    except died:
                        if w.alive:  # its other batches in flight fail too and come back here
                            self.deaths.append(w.name)
                            lost[label] += 1
                            retire(w)
                        queues[label].appendleft(b)  # never answered: ask again, on another actor
                        self.resent.append((w.name, len(b.requests)))
                        continue
                    except RayTaskError as e:
                        cause = getattr(e, "cause", None)
                        if isinstance(cause, ProvenanceError):
                            raise cause from None
                        first = str(cause).splitlines()[0][:160] if str(cause) else ""
                        raise ModelError(f"{label}: generation failed on Ray worker {w.name} "
                                         f"({type(cause).__name__}: {first})") from None
                    if out["key"] != key:
                        raise ModelError(f"{label}: the Ray worker on {out['host']} built a different model (store "
                                         f"key {out['key']}, here {key}): its model files or settings differ from "
                                         f"this machine's; give every node the same model files")
                    store_batch(store, stats, label, model, key, hashes[b.item], b.requests, out["answers"],
                                out["seconds"])
                    rec = BatchRecord(w.name, out["pid"], out["host"], label, key,
                                      [(r.prompt_id, r.sample) for r in b.requests])
                    self.log.append(rec)
                    advance(label, battery.name, len(b.requests))
                    if self.on_batch is not None:
                        self.on_batch(rec)
                fill()
        finally:  # done, or an error: end every actor still held, freeing its CPUs/GPUs
            for w in workers:
                if w.alive:
                    retire(w)
