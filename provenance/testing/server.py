"""A real OpenAI-compatible HTTP server on 127.0.0.1, with fault injection.

:class:`LoopbackServer` serves any provenance model backend (the zoo's ``hf/`` models,
``mock/`` models) as ``POST /v1/chat/completions`` and ``GET /v1/models`` over real TCP
(asyncio + h11, HTTP/1.1 keep-alive), batching concurrent requests to a model the way
vLLM does (per-request seeds keep answers independent of batching); it also answers
Anthropic's ``POST /v1/messages``. It injects faults on
demand, deterministically per (request, attempt):

==================  ==========================================================
``429``             429 with ``Retry-After``
``503``             503 with ``Retry-After``
``500``             500 with a JSON error body
``slow``            the answer, but only after ``slow_seconds`` (past a client timeout)
``truncated``       the headers and half the JSON body, then the connection closes
``truncated-json``  a complete HTTP answer whose JSON body is cut in half
``reset``           the connection is reset (TCP RST) without an answer
``content-type``    200 with an HTML page instead of JSON
``empty-choices``   200 with ``"choices": []``
==================  ==========================================================

It counts every request it receives (:attr:`LoopbackServer.hits`), keyed by
(model, seed, messages), so tests can check that nothing was asked more often than its
faults require. Use it in tests and benchmarks::

    with LoopbackServer({"teacher-a": "hf/fixtures/zoo/models/teacher-a"},
                        faults=Faults(rate=0.2)) as srv:
        model = load_model("openai/teacher-a", base_url=srv.base_url)

or as a process: ``python -m provenance.testing.server --model teacher-a=hf/... --port 8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping

import h11

from ..models import load_model
from ..models.base import Model, Request, SamplingSettings

FAULT_KINDS = ("429", "500", "503", "slow", "truncated", "truncated-json", "reset", "content-type", "empty-choices")


@dataclass
class Faults:
    """Which faults to inject, how often. ``rate`` is the chance that one attempt of a
    request gets a fault, drawn from (seed, request, attempt), so a rerun injects the same."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    retry_after: float | None = 0.05
    slow_seconds: float = 3.0
    seed: int = 0
    #: at most this many faults for one request (None: no bound)
    max_per_request: int | None = None
    #: take the kinds in turn (every kind shows up once ``len(kinds)`` faults were injected)
    #: instead of drawing the kind at random
    cycle: bool = False

    def __post_init__(self):
        bad = set(self.kinds) - set(FAULT_KINDS)
        if bad:
            raise ValueError(f"unknown fault kinds {sorted(bad)}; choose from {FAULT_KINDS}")

    def draw(self, key: str, attempt: int, injected_so_far: int) -> str | None:
        if self.rate <= 0 or not self.kinds:
            return None
        if self.max_per_request is not None and injected_so_far >= self.max_per_request:
            return None
        u = random.Random(f"{self.seed}|{key}|{attempt}").random()
        if u >= self.rate:
            return None
        return self.kinds[min(int(u / self.rate * len(self.kinds)), len(self.kinds) - 1)]


@dataclass
class Hit:
    """One request as the server saw it (``time``: when it arrived, seconds since the epoch)."""

    time: float
    path: str
    model: str | None
    key: str | None
    attempt: int
    fault: str | None
    status: int | None
    authorization: bool = False


@dataclass
class _Job:
    request: Request
    sampling: SamplingSettings
    logprobs: bool
    future: asyncio.Future = field(repr=False)


class LoopbackServer:
    """An OpenAI-compatible server on 127.0.0.1 in a background thread. See the module doc."""

    def __init__(self, models: Mapping[str, Model | str], *, api_key: str | None = None, faults: Faults | None = None,
                 latency: float = 0.0, host: str = "127.0.0.1", port: int = 0, max_batch: int = 32,
                 batch_window: float = 0.005):
        self.models: dict[str, Model] = {n: load_model(m) if isinstance(m, str) else m for n, m in models.items()}
        self.api_key = api_key
        self.faults = faults or Faults()
        self.latency = latency
        self.host, self.port = host, port
        self.max_batch, self.batch_window = max_batch, batch_window
        self.hits: list[Hit] = []
        self._attempts: Counter = Counter()
        self._injected: Counter = Counter()
        self._n_injected = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None
        self._queues: dict[str, asyncio.Queue] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopback-gen")
        self._conns: set = set()
        self.hits_file = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "LoopbackServer":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="loopback-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self):
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]
        for name in self.models:
            self._queues[name] = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._batcher(name))

    def stop(self) -> None:
        if self._loop is None:
            return

        async def _stop():
            self._server.close()
            for w in list(self._conns):
                w.transport.abort()
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.cancel()

        try:
            asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._loop = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults

    # -- counts for tests --------------------------------------------------------------------
    def attempts(self) -> Counter:
        """Requests received per request key (model|seed|messages hash)."""
        with self._lock:
            return Counter(h.key for h in self.hits if h.key)

    def answered(self) -> Counter:
        """200 answers with content sent per request key."""
        with self._lock:
            return Counter(h.key for h in self.hits if h.key and h.status == 200 and h.fault in (None, "slow"))

    def injected(self) -> Counter:
        """Faults injected per request key."""
        with self._lock:
            return Counter(h.key for h in self.hits if h.key and h.fault)

    @staticmethod
    def request_key(model: str, seed: Any, messages: Any) -> str:
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
        return f"{model}|{seed}|{digest}"

    # -- HTTP --------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        self._conns.add(writer)
        try:
            while True:
                req, body = None, bytearray()
                while True:
                    ev = conn.next_event()
                    if ev is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                        continue
                    if isinstance(ev, h11.Request):
                        req = ev
                    elif isinstance(ev, h11.Data):
                        body += ev.data
                    elif isinstance(ev, h11.EndOfMessage):
                        break
                    elif isinstance(ev, h11.ConnectionClosed) or ev is h11.PAUSED:
                        return
                status, headers, payload, mode = await self._route(req, bytes(body))
                if mode == "reset":
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                headers = [(b"content-length", str(len(payload)).encode())] + headers
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
                if mode == "truncated":
                    writer.write(conn.send(h11.Data(data=payload[: len(payload) // 2])))
                    await writer.drain()
                    writer.close()
                    return
                writer.write(conn.send(h11.Data(data=payload)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError, h11.LocalProtocolError, asyncio.CancelledError, OSError):
            return
        finally:
            self._conns.discard(writer)
            if not writer.is_closing():
                writer.close()

    @staticmethod
    def _json(status: int, obj: Any, extra: list | None = None):
        return status, [(b"content-type", b"application/json")] + (extra or []), json.dumps(obj).encode(), "normal"

    def _error(self, status: int, message: str, etype: str, code: str | None = None, extra=None):
        return self._json(status, {"error": {"message": message, "type": etype, "code": code}}, extra)

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)
            if self.hits_file is not None:
                self.hits_file.write(json.dumps(hit.__dict__) + "\n")
                self.hits_file.flush()

    async def _route(self, req: h11.Request, body: bytes):
        t0 = time.time()
        path = req.target.decode("latin-1").split("?")[0]
        method = req.method.decode()
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in req.headers}
        auth = headers.get("authorization", "") or headers.get("x-api-key", "")
        if self.api_key is not None and auth not in (f"Bearer {self.api_key}", self.api_key):
            self._record(Hit(t0, path, None, None, 0, None, 401, bool(auth)))
            masked = auth.removeprefix("Bearer ")
            masked = f": {masked[:3]}***{masked[-4:]}" if len(masked) > 8 else ""
            return self._error(401, f"Incorrect API key provided{masked}.", "invalid_request_error", "invalid_api_key")
        if method == "GET" and path == "/v1/models":
            return self._json(200, {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "loopback"}
                                                               for n in self.models]})
        messages_api = path == "/v1/messages"  # Anthropic's native API
        if not (method == "POST" and path in ("/v1/chat/completions", "/v1/messages")):
            self._record(Hit(t0, path, None, None, 0, None, 404, bool(auth)))
            return 404, [(b"content-type", b"text/html")], b"<html><body><h1>404 Not Found</h1></body></html>", "normal"
        try:
            data = json.loads(body)
            assert isinstance(data, dict)
        except (ValueError, AssertionError):
            return self._error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        name = data.get("model")
        messages = data.get("messages")
        if messages_api and isinstance(messages, list) and data.get("system"):
            messages = [{"role": "system", "content": data["system"]}] + messages
        key = self.request_key(str(name), data.get("seed"), messages)
        with self._lock:
            self._attempts[key] += 1
            attempt = self._attempts[key]
            fault = self.faults.draw(key, attempt, self._injected[key]) if name in self.models else None
            if fault and self.faults.cycle:
                fault = self.faults.kinds[self._n_injected % len(self.faults.kinds)]
            if fault:
                self._n_injected += 1
                self._injected[key] += 1
        hit = Hit(t0, path, name, key, attempt, fault, None, bool(auth))
        self._record(hit)  # on arrival; its status is filled in when the answer is made
        status = None
        try:
            if name not in self.models:
                status = 404
                return self._error(404, f"The model `{name}` does not exist or you do not have access to it.",
                                   "invalid_request_error", "model_not_found")
            if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
                status = 400
                return self._error(400, "'messages' must be a non-empty list of objects", "invalid_request_error")
            if self.latency:
                await asyncio.sleep(self.latency)
            ra = [(b"retry-after", f"{self.faults.retry_after:g}".encode())] if self.faults.retry_after is not None else []
            if fault == "429":
                status = 429
                return self._error(429, "Rate limit reached; please retry after a short wait.", "rate_limit_error",
                                   "rate_limit_exceeded", ra)
            if fault == "503":
                status = 503
                return self._error(503, "The server is overloaded; retry later.", "server_error", None, ra)
            if fault == "500":
                status = 500
                return self._error(500, "The server had an error while processing your request.", "server_error")
            if fault == "reset":
                return 0, [], b"", "reset"
            if fault == "content-type":
                status = 200
                return 200, [(b"content-type", b"text/html; charset=utf-8")], \
                    b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>", "normal"
            if fault == "slow":
                await asyncio.sleep(self.faults.slow_seconds)
            try:
                answer = await self._answer(name, data, messages)
                if messages_api:
                    answer = _as_message(answer)
            except ValueError as e:
                status = 400
                return self._error(400, str(e), "invalid_request_error")
            except Exception as e:  # the backend failed: a 500 with its reason, as a real server answers
                status = 500
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                return self._error(500, f"the model backend failed: {type(e).__name__}: {first}", "server_error")
            if fault == "empty-choices":
                answer["choices" if not messages_api else "content"] = []
            status = 200
            s, h, payload, _ = self._json(200, answer)
            if fault == "truncated-json":
                payload = payload[: len(payload) // 2]
            return s, h, payload, "truncated" if fault == "truncated" else "normal"
        finally:
            hit.status = status

    # -- answering ---------------------------------------------------------------------------
    async def _answer(self, name: str, data: dict, messages: list) -> dict:
        system = next((m.get("content") for m in messages if m.get("role") == "system"), None)
        user = [m.get("content") for m in messages if m.get("role") == "user"]
        if not user or not isinstance(user[-1], str):
            raise ValueError("the last message must be a user message with text content")
        try:
            sampling = SamplingSettings(temperature=float(data.get("temperature", 1.0)),
                                        top_p=float(data.get("top_p", 1.0)),
                                        max_new_tokens=int(data.get("max_tokens") or data.get("max_completion_tokens") or 64))
        except Exception as e:
            raise ValueError(f"invalid sampling settings: {str(e).splitlines()[0]}") from None
        seed = data.get("seed")
        seed = int(seed) if seed is not None else random.getrandbits(63)
        request = Request(prompt_id="loopback", prompt=user[-1], sample=0, seed=seed, system_prompt=system)
        fut = asyncio.get_running_loop().create_future()
        await self._queues[name].put(_Job(request, sampling, bool(data.get("logprobs")), fut))
        completion, logprobs = await fut
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": completion.text},
                                  "finish_reason": completion.finish_reason, "logprobs": None}
        if logprobs is not None:
            choice["logprobs"] = {"content": [{"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": []}
                                              for t, lp in logprobs]}
        tin, tout = completion.tokens_in or 0, completion.tokens_out or 0
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": name, "system_fingerprint": "fp_loopback", "choices": [choice],
                "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}}

    async def _batcher(self, name: str) -> None:
        """Gather the requests that arrive together and answer them in one batch."""
        queue, model, loop = self._queues[name], self.models[name], asyncio.get_running_loop()
        while True:
            jobs = [await queue.get()]
            if self.batch_window:
                await asyncio.sleep(self.batch_window)
            while not queue.empty() and len(jobs) < self.max_batch:
                jobs.append(queue.get_nowait())
            groups: dict[SamplingSettings, list[_Job]] = {}
            for j in jobs:
                groups.setdefault(j.sampling, []).append(j)
            for sampling, group in groups.items():
                args = (model, [j.request for j in group], sampling, [j.logprobs for j in group])
                try:
                    if model.provider == "mock":  # instant: no thread hop
                        results = _generate(*args)
                    else:
                        results = await loop.run_in_executor(self._executor, _generate, *args)
                except Exception as e:  # a backend failure becomes a 500 for those requests
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(e)
                    continue
                for j, r in zip(group, results):
                    if not j.future.done():
                        j.future.set_result(r)


def _as_message(answer: dict) -> dict:
    """A chat completion in the shape of Anthropic's Messages API."""
    choice, usage = answer["choices"][0], answer["usage"]
    return {"id": "msg_" + answer["id"].removeprefix("chatcmpl-"), "type": "message", "role": "assistant",
            "model": answer["model"], "content": [{"type": "text", "text": choice["message"]["content"]}],
            "stop_reason": {"length": "max_tokens"}.get(choice["finish_reason"], "end_turn"), "stop_sequence": None,
            "usage": {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"]}}


def _generate(model: Model, requests: list[Request], sampling: SamplingSettings, want_logprobs: list[bool]):
    completions = model.generate(requests, sampling)
    out = []
    for r, c, want in zip(requests, completions, want_logprobs):
        lp = _token_logprobs(model, r, c.text) if want else None
        out.append((c, lp))
    return out


def _token_logprobs(model: Model, request: Request, text: str) -> list[tuple[str, float]] | None:
    """Per-token log-probabilities of ``text`` under a white-box model (teacher forcing);
    for ``mock/`` models, made-up but deterministic values (plumbing only)."""
    if getattr(model, "provider", "") == "hf":
        import torch

        model._load()
        tok, net = model._tokenizer, model._model
        p_ids = tok(model.render(request.prompt, request.system_prompt), add_special_tokens=not tok.chat_template)["input_ids"]
        c_ids = tok(text, add_special_tokens=False)["input_ids"]
        if not c_ids:
            return []
        ids = torch.tensor([p_ids + c_ids], device=model.device)
        with torch.no_grad():
            logp = torch.log_softmax(net(input_ids=ids).logits.float(), -1)[0].cpu()
        pos = torch.arange(len(p_ids) - 1, len(p_ids) + len(c_ids) - 1)
        values = logp[pos, torch.tensor(c_ids)].tolist()
        return [(tok.decode([i]), round(v, 6)) for i, v in zip(c_ids, values)]
    rng = random.Random(request.seed)
    return [(w, round(-rng.random() * 3, 6)) for w in text.split()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m provenance.testing.server",
                                 description="An OpenAI-compatible loopback server over provenance backends.")
    ap.add_argument("--model", action="append", required=True, metavar="NAME=MODEL_STRING",
                    help="serve MODEL_STRING (e.g. hf/fixtures/zoo/models/teacher-a) as NAME (repeatable)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--api-key-env", help="require the key held by this environment variable")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--fault-kinds", default=",".join(FAULT_KINDS))
    ap.add_argument("--retry-after", type=float, default=0.05)
    ap.add_argument("--slow-seconds", type=float, default=3.0)
    ap.add_argument("--ready-file", help="write the base URL here once listening")
    ap.add_argument("--hits-file", help="append every request seen, as JSON lines")
    ap.add_argument("--batch-window", type=float, default=0.005)
    a = ap.parse_args(argv)
    import os

    models = dict(m.split("=", 1) for m in a.model)
    faults = Faults(rate=a.fault_rate, kinds=tuple(k for k in a.fault_kinds.split(",") if k),
                    retry_after=a.retry_after, slow_seconds=a.slow_seconds)
    key = os.environ.get(a.api_key_env) if a.api_key_env else None
    srv = LoopbackServer(models, api_key=key, faults=faults, latency=a.latency, port=a.port,
                         batch_window=a.batch_window)
    if a.hits_file:
        srv.hits_file = open(a.hits_file, "a", encoding="utf-8")
    srv.start()
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(srv.base_url)
        os.replace(tmp, a.ready_file)
    print(f"serving {', '.join(models)} at {srv.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
