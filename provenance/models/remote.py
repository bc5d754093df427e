"""What API-backed models share: endpoints, transport settings, errors that heal and errors
that do not, retries with tenacity, prices.

A :class:`RemoteModel` answers one :class:`~provenance.models.base.Request` per HTTP call
(``acomplete``), so every answer can be committed the moment it arrives. Collection
(:mod:`provenance.fetch`) runs many calls at once, bounded per endpoint, and retries only
what can heal:

* **transient** (retried with exponential backoff and jitter, ``Retry-After`` honoured on
  429/503): 408, 409, 425, 429, 5xx, timeouts, refused or reset connections, a truncated or
  non-JSON body, an empty ``choices`` list;
* **fatal** (stops that model at once): 400, 401, 403, 404, 422 and other 4xx; and any
  transient error that is still there after the last attempt.

**Replicas.** ``base_url`` may be a list (or ``base_urls``): several servers of one model.
Each is an :class:`Endpoint` with its own concurrency bound; :class:`Replicas` sends each
attempt to the usable replica with the fewest calls on it, leaves out one that fails
(refused or broken connection, timeout, 5xx) for a backoff period that doubles with each
failure in a row (``replica_backoff_initial`` .. ``replica_backoff_max``), then lets one probe
call through; a success takes it back. A call that failed on one replica is retried (by
tenacity) on another. The identity stays that of one model.

Transport settings (timeouts, concurrency, attempts, backoff) never enter a model's
identity; the API key is read from the environment variable the audit file names and is
never stored, logged or printed.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import ModelError, SpecError
from .base import Completion, Model, Request, SamplingSettings

#: HTTP statuses worth another try
TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529}


class RemoteError(Exception):
    """An API call failed. ``kind`` is a short machine word (``http-429``, ``timeout``,
    ``connect``, ``reset``, ``truncated``, ``not-json``, ``empty-choices``, ...)."""

    def __init__(self, message: str, *, kind: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class TransientError(RemoteError):
    """Worth another try."""


class FatalError(RemoteError):
    """Will not heal by retrying (bad key, unknown model, rejected request)."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (and of its tail, as providers echo keys
    masked like ``sk-...abcd``) removed."""
    if not secret:
        return text
    text = text.replace(secret, "***")
    if len(secret) >= 12:
        text = text.replace(secret[-8:], "***").replace(secret[:8], "***")
    return text


@dataclass(frozen=True)
class Prices:
    """USD per million tokens, from the audit file: ``prices = {input = 2.5, output = 10}``."""

    input: float = 0.0
    output: float = 0.0

    def cost(self, tokens_in: int | None, tokens_out: int | None) -> float:
        return ((tokens_in or 0) * self.input + (tokens_out or 0) * self.output) / 1e6


@dataclass(frozen=True)
class Transport:
    """How calls are made. None of it changes an answer, so none of it is in the identity."""

    timeout: float = 60.0
    connect_timeout: float = 10.0
    max_concurrency: int = 8
    max_attempts: int = 8
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    #: attempts allowed for refused connections while the endpoint has never answered:
    #: an unreachable base URL is reported in seconds, not minutes
    connect_attempts: int = 3
    #: replicas: how long a failing replica is left out (doubling with each failure in a row)
    replica_backoff_initial: float = 1.0
    replica_backoff_max: float = 60.0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "Transport":
        names = set(cls.__dataclass_fields__)
        kw = {k: options.pop(k) for k in list(options) if k in names}
        try:
            t = cls(**{k: type(getattr(cls, k))(v) for k, v in kw.items()})
        except (TypeError, ValueError) as e:
            raise SpecError(f"transport option: {e}; give numbers for {', '.join(sorted(kw))}") from None
        if t.max_concurrency < 1 or t.max_attempts < 1 or t.timeout <= 0:
            raise SpecError("transport options: max_concurrency and max_attempts must be >= 1 and timeout > 0")
        return t


#: failures that say a server is unwell (not merely busy or refusing a request): a replica
#: that gives one is left out for a while
DOWN_KINDS = {"connect", "reset", "truncated", "timeout", "transport", "not-json"}


def says_down(e: "RemoteError") -> bool:
    """A 5xx or a broken connection; a 429/503 with ``Retry-After`` pauses the endpoint instead."""
    if e.retry_after is not None:
        return False
    return e.kind in DOWN_KINDS or (e.status is not None and e.status >= 500)


@dataclass
class Endpoint:
    """Per base URL state shared by every model on it: the concurrency bound, a pause that
    a ``Retry-After`` sets for everyone, and (for replicas) whether it is left out."""

    url: str
    max_concurrency: int
    semaphore: asyncio.Semaphore | None = None
    #: requests taken up at once (claimed in the store, waiting to be sent or retried)
    admission: asyncio.Semaphore | None = None
    paused_until: float = 0.0
    ever_ok: bool = False
    in_flight: int = 0
    peak_in_flight: int = 0
    #: calls sent here and not yet finished, waiting for a slot included
    assigned: int = 0
    #: failures in a row that say the server is unwell; 0: healthy
    failures: int = 0
    #: left out until then (time.monotonic())
    down_until: float = 0.0
    #: a probe call is on its way to this (failed) replica
    probing: bool = False

    def bind(self) -> "Endpoint":
        if self.semaphore is None:
            self.semaphore = asyncio.Semaphore(self.max_concurrency)
            self.admission = asyncio.Semaphore(2 * self.max_concurrency)
        return self

    async def wait_ready(self) -> None:
        delay = self.paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def usable(self, now: float) -> bool:
        """Healthy and not paused, or failed but its backoff over and no probe on its way."""
        if now < self.paused_until:
            return False
        return self.failures == 0 or (now >= self.down_until and not self.probing)

    def mark_down(self, transport: "Transport", probe: bool = False) -> None:
        """A failure that says the server is unwell. The first, and each failed probe, leave
        it out for longer; calls that were already on their way when it went down add nothing."""
        if self.failures and not probe:
            return
        self.failures += 1
        wait = min(transport.replica_backoff_max, transport.replica_backoff_initial * 2 ** (self.failures - 1))
        self.down_until = time.monotonic() + wait

    def mark_up(self) -> None:
        self.failures = 0
        self.down_until = 0.0


class Replicas:
    """The endpoints (base URLs) that serve one model. :meth:`acquire` picks, per attempt, the
    usable replica with the fewest calls on it (relative to its concurrency bound, ties in
    turn) and takes one of its slots. With one endpoint it is just that endpoint, as before."""

    def __init__(self, endpoints: list[Endpoint]):
        self.endpoints = [e.bind() for e in endpoints]
        #: requests taken up at once over all replicas (claimed in the store, not yet done)
        self.admission = asyncio.Semaphore(2 * sum(e.max_concurrency for e in self.endpoints))
        self._turn = 0

    @property
    def ever_ok(self) -> bool:
        return any(e.ever_ok for e in self.endpoints)

    def __len__(self) -> int:
        return len(self.endpoints)

    def _pick(self) -> tuple[Endpoint, bool]:
        now = time.monotonic()
        n = len(self.endpoints)
        order = [self.endpoints[(self._turn + i) % n] for i in range(n)]
        self._turn += 1
        usable = [e for e in order if e.usable(now)]
        if usable:
            ep = min(usable, key=lambda e: e.assigned / e.max_concurrency)
            probe = ep.failures > 0
        else:  # every replica is left out: the one back soonest, as if it were the only one
            ep, probe = min(order, key=lambda e: max(e.paused_until, e.down_until)), False
        if probe:
            ep.probing = True
        ep.assigned += 1
        return ep, probe

    def _any_usable(self) -> bool:
        now = time.monotonic()
        return any(e.usable(now) for e in self.endpoints)

    async def acquire(self) -> tuple[Endpoint, bool]:
        """(endpoint, whether this call is its probe), holding one of its slots. When every
        replica is left out, the call goes to the one back soonest (its attempts and tenacity's
        backoff then run as for a single server, so a dead set of replicas fails as fast as
        a dead server)."""
        while True:
            ep, probe = self._pick()
            try:
                await ep.semaphore.acquire()
            except BaseException:
                self.release(ep, probe, slot=False)
                raise
            if len(self.endpoints) > 1 and ep.failures and not probe and self._any_usable():
                self.release(ep, probe)  # it failed while this call waited for a slot: go elsewhere
                continue
            return ep, probe

    def release(self, ep: Endpoint, probe: bool, *, slot: bool = True) -> None:
        if slot:
            ep.semaphore.release()
        ep.assigned -= 1
        if probe:
            ep.probing = False


class RemoteModel(Model):
    """Base of API backends: one request per call, async, retried by :mod:`provenance.fetch`."""

    remote = True
    default_base_url = ""
    #: the key's variable when base_url is the provider's own API and api_key_env is not given
    #: (a key is never sent to any other base URL unless api_key_env names it)
    default_key_env = ""

    def __init__(self, name: str, *, system_prompt: str | None = None, base_url: str | list[str] | None = None,
                 base_urls: list[str] | None = None, replica_set: str | None = None,
                 api_key_env: str | None = None, prices: dict[str, float] | None = None,
                 extra_body: dict[str, Any] | None = None, **options: Any):
        try:
            import aiohttp  # noqa: F401
            import tenacity  # noqa: F401
        except ImportError:
            raise ModelError(f"{self.provider}/{name}: API models need aiohttp and tenacity; "
                             f"pip install 'provenance[api]'") from None
        transport = Transport.from_options(options)
        super().__init__(name, system_prompt=system_prompt, **options)
        self.transport = transport
        self.base_urls = _base_urls(f"{self.provider}/{name}", base_url, base_urls, self.default_base_url)
        #: the first replica (the only one, usually)
        self.base_url = self.base_urls[0]
        if replica_set is not None and (not isinstance(replica_set, str) or not replica_set.strip()):
            raise SpecError(f"{self.provider}/{name}: replica_set must be a name (a non-empty string), e.g. "
                            f"replica_set = \"suspect-7b-vllm\"")
        self.replica_set = replica_set
        if api_key_env is None and self.default_key_env and self.base_urls == [self.default_base_url.rstrip("/")]:
            api_key_env = self.default_key_env  # the provider's own API: its usual variable
        self.api_key_env = api_key_env
        try:
            self.prices = Prices(**prices) if prices is not None else None
        except TypeError:
            raise SpecError(f"{self.provider}/{name}: prices must be a table {{input = USD per 1M tokens, "
                            f"output = USD per 1M tokens}}") from None
        self.extra_body = dict(extra_body or {})
        unknown = set(self.options) - set(self.known_options)
        if unknown:
            raise SpecError(f"{self.provider}/{name}: unknown option(s) {', '.join(sorted(unknown))}; known: "
                            f"base_url, base_urls, replica_set, api_key_env, prices, extra_body, "
                            f"{', '.join(self.known_options)}, "
                            f"{', '.join(Transport.__dataclass_fields__)}")
        self._kept_session = None
        self._ssl = None

    #: provider-specific options a subclass accepts besides the common ones
    known_options: tuple[str, ...] = ()

    # -- secrets -----------------------------------------------------------------------------
    def check_ready(self) -> None:
        """Before the first call (not at load: re-rendering a report from the store needs no key)."""
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise SpecError(f"{self.provider}/{self.name}: environment variable {self.api_key_env} (api_key_env) is "
                            f"not set; export it with the API key")

    def _api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def redact(self, text: str) -> str:
        return redact(text, self._api_key())

    # -- identity ----------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """Provider, model name, where it is served, system prompt, extra request fields.
        Replicas: the sorted list of base URLs (their order does not matter), or, with
        ``replica_set``, that name instead of the URLs (replicas may then be added or dropped
        without asking anything again: the audit file vouches that they serve one model)."""
        if self.replica_set is not None:
            where: dict[str, Any] = {"replica_set": self.replica_set}
        elif len(self.base_urls) == 1:
            where = {"base_url": self.base_url}
        else:
            where = {"base_url": sorted(self.base_urls)}
        return {"provider": self.provider, "name": self.name, **where,
                "system_prompt": self.system_prompt, "extra_body": self.extra_body or None}

    @property
    def endpoint_url(self) -> str:
        return self.base_url

    @property
    def endpoint_urls(self) -> list[str]:
        """Every replica's base URL (one, usually)."""
        return list(self.base_urls)

    # -- one call ----------------------------------------------------------------------------
    def _new_session(self):
        import aiohttp

        t = self.transport
        if self._ssl is None:
            import ssl

            self._ssl = ssl.create_default_context()  # loading CA certificates costs 0.1 s: once
        # at most max_concurrency keep-alive connections per replica (the endpoints' semaphores
        # bound the calls; this bounds the sockets to match)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=t.max_concurrency, ssl=self._ssl)
        # trust_env: HTTP(S)_PROXY and NO_PROXY are honoured, as they were with httpx
        return aiohttp.ClientSession(
            connector=connector, headers=self.headers(), raise_for_status=False, trust_env=True,
            timeout=aiohttp.ClientTimeout(total=t.timeout, sock_connect=min(t.connect_timeout, t.timeout)))

    def session(self):
        """The model's kept ``aiohttp.ClientSession`` on the running event loop (one per
        collection; :meth:`aclose` closes it). aiohttp, not httpx: measured on the loopback
        benchmark, a call costs the client about 0.6 ms of CPU against 3 ms with httpx, which
        at 32 calls in flight on a small machine decides whether the concurrency bound is reached."""
        loop = asyncio.get_running_loop()
        if self._kept_session is None or self._kept_session[0] is not loop or self._kept_session[1].closed:
            self._kept_session = (loop, self._new_session())
        return self._kept_session[1]

    def headers(self) -> dict[str, str]:
        return {}

    async def aclose(self) -> None:
        if self._kept_session is not None:
            loop, session = self._kept_session
            self._kept_session = None
            if loop is asyncio.get_running_loop():
                await session.close()

    def request_settings(self, request: Request, sampling: SamplingSettings) -> dict[str, Any]:
        """What the evidence log records of a call's settings (no prompt text, no key)."""
        return {"model": self.name, **sampling.model_dump(), "seed": request.seed}

    async def acomplete(self, request: Request, sampling: SamplingSettings, *,
                        base_url: str | None = None) -> tuple[Completion, dict[str, Any]]:
        """One HTTP call, to ``base_url`` (a replica; default the first). Returns the
        completion and what the evidence log records about the call (settings sent, response
        id). Raises :class:`TransientError` or :class:`FatalError`."""
        raise NotImplementedError

    async def _post(self, path: str, payload: dict[str, Any], base_url: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST JSON to ``base_url`` (default the first replica); classify every failure as
        transient or fatal; return (status, body)."""
        import json

        import aiohttp

        root = base_url or self.base_url
        url = f"{root}{path}"
        try:
            async with self.session().post(url, json=payload, allow_redirects=False) as resp:
                raw = await resp.read()
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as e:
            raise TransientError(f"no answer within {self.transport.timeout:g} s ({type(e).__name__})", kind="timeout") from None
        except aiohttp.ClientConnectorError as e:
            raise TransientError(f"cannot connect to {root} ({_short(e)})", kind="connect") from None
        except aiohttp.ClientPayloadError as e:
            raise TransientError(f"connection broke off ({type(e).__name__}: {_short(e)})", kind="truncated") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
            raise TransientError(f"connection broke off ({type(e).__name__}: {_short(e)})", kind="reset") from None
        except aiohttp.ClientError as e:
            raise TransientError(f"transport error ({type(e).__name__}: {_short(e)})", kind="transport") from None
        status = resp.status
        ctype = resp.headers.get("content-type", "")
        try:
            text = raw.decode(resp.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            text = raw.decode("utf-8", errors="replace")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        if status >= 400:
            msg = _error_message(body, text)
            msg = self.redact(msg)
            retry_after = parse_retry_after(resp.headers.get("retry-after")) if status in (429, 503) else None
            if status in TRANSIENT_STATUS:
                raise TransientError(f"HTTP {status}{': ' + msg if msg else ''}", kind=f"http-{status}",
                                     status=status, retry_after=retry_after)
            raise FatalError(self._fatal_hint(status, msg, root), kind=f"http-{status}", status=status)
        if not isinstance(body, dict):
            what = "an empty body" if not text else f"a body that is not JSON ({ctype or 'no content type'}, {len(text)} bytes)"
            raise TransientError(f"HTTP {status} with {what}; is base_url the API root (…/v1)?", kind="not-json", status=status)
        return status, body

    def _fatal_hint(self, status: int, msg: str, root: str | None = None) -> str:
        key = f"${self.api_key_env}" if self.api_key_env else "no key (set api_key_env in the audit file)"
        hints = {401: f"authentication failed; check the API key in {key}",
                 403: f"access denied; check the key in {key} and its permissions for this model",
                 404: f"not found; check the model name {self.name!r} and that base_url {root or self.base_url} is the API root",
                 400: "request rejected; check the model's options (extra_body, sampling settings)",
                 422: "request rejected; check the model's options (extra_body, sampling settings)"}
        hint = hints.get(status, "request refused")
        return f"HTTP {status}{' (' + msg + ')' if msg else ''}: {hint}"

    # -- the synchronous interface -------------------------------------------------------------
    def generate(self, requests: list[Request], sampling: SamplingSettings) -> list[Completion | None]:
        """Answer ``requests`` with the same retries and concurrency bound as an audit (but
        without a store). Raises :class:`~provenance.errors.ModelError` on a fatal error."""
        from ..fetch import run_requests

        return run_requests(self, requests, sampling)

    def close(self) -> None:
        if self._kept_session is not None:
            loop, session = self._kept_session
            self._kept_session = None
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(session.close())


def _base_urls(model: str, base_url: Any, base_urls: Any, default: str) -> list[str]:
    """The replicas' base URLs from ``base_url`` (one URL or a list) or ``base_urls`` (a list)."""
    if base_url is not None and base_urls is not None:
        raise SpecError(f"{model}: give base_url or base_urls, not both (base_urls = [\"http://a:8000/v1\", "
                        f"\"http://b:8000/v1\"] for replicas)")
    given = base_urls if base_urls is not None else base_url
    if given is None:
        given = [default]
    elif isinstance(given, str):
        given = [given]
    if not isinstance(given, (list, tuple)) or not given:
        raise SpecError(f"{model}: base_urls must be a non-empty list of URLs, e.g. "
                        f"base_urls = [\"http://a:8000/v1\", \"http://b:8000/v1\"]")
    out: list[str] = []
    for u in given:
        if not isinstance(u, str) or not u.startswith(("http://", "https://")):
            raise SpecError(f"{model}: base_url {u!r} is not an http(s) URL; "
                            f"e.g. base_url = \"http://127.0.0.1:8000/v1\"")
        u = u.rstrip("/")
        if u in out:
            raise SpecError(f"{model}: base URL {u} is listed twice; list each replica once")
        out.append(u)
    return out


def _short(e: BaseException) -> str:
    s = str(e).strip() or type(e).__name__
    return s.splitlines()[0][:160]


def _error_message(body: Any, text: str) -> str:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            m = err.get("message") or err.get("detail") or err.get("type")
            if m:
                return str(m).splitlines()[0][:200]
        elif isinstance(err, str):
            return err.splitlines()[0][:200]
        if "detail" in body:
            return str(body["detail"]).splitlines()[0][:200]
    return text.strip().splitlines()[0][:120] if text.strip() else ""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


__all__ = ["DOWN_KINDS", "Endpoint", "Replicas", "FatalError", "Prices", "RemoteError", "RemoteModel", "TransientError", "Transport",
           "parse_retry_after", "redact", "now_iso"]
