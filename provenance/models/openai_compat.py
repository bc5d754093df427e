"""``openai/<model>``: any OpenAI-compatible chat completions endpoint.

OpenAI itself, vLLM, llama.cpp's server, SGLang, OpenRouter, ... Options (in the audit file,
``options = {...}``):

* ``base_url``: the API root, e.g. ``http://127.0.0.1:8000/v1`` (default OpenAI's), or a list
  of them (or ``base_urls``): replicas of one model, over which calls are spread (see
  :class:`~provenance.models.remote.Replicas`); ``replica_set`` names such a set in the
  identity instead of its URLs;
* ``api_key_env``: the name of the environment variable that holds the key (default
  ``OPENAI_API_KEY`` for OpenAI's own API; for any other base URL a key is sent only when this
  is given). The key is never stored, logged or printed;
* ``prices``: ``{input = .., output = ..}`` in USD per million tokens, for cost and
  ``--max-cost``;
* ``logprobs`` (default true): ask for token log-probabilities; an endpoint that rejects
  them is asked again without, and the answer is stored without them;
* ``top_logprobs`` (default 0), ``max_tokens_param`` (``max_tokens`` or
  ``max_completion_tokens``), ``extra_body`` (more request fields, part of the identity);
* transport: ``timeout``, ``max_concurrency``, ``max_attempts``, ``backoff_initial``,
  ``backoff_max``, ``max_retry_after``, ``replica_backoff_initial``, ``replica_backoff_max``
  (not part of the identity).

Every sample is its own request, with the request's seed sent as ``seed``, so each
(prompt, sample) is stored and retried on its own.
"""

from __future__ import annotations

import time
from typing import Any

from .base import Completion, Request, SamplingSettings
from .remote import FatalError, RemoteModel, TransientError, now_iso

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIModel(RemoteModel):
    provider = "openai"
    default_base_url = OPENAI_BASE_URL
    default_key_env = "OPENAI_API_KEY"
    known_options = ("logprobs", "top_logprobs", "max_tokens_param")

    def __init__(self, name: str, **kw: Any):
        super().__init__(name, **kw)
        self.want_logprobs = bool(self.options.get("logprobs", True))
        self.top_logprobs = int(self.options.get("top_logprobs", 0))
        self.max_tokens_param = str(self.options.get("max_tokens_param", "max_tokens"))
        self._logprobs_refused = False

    def headers(self) -> dict[str, str]:
        key = self._api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        if self.max_tokens_param != "max_tokens":
            ident["max_tokens_param"] = self.max_tokens_param
        return ident

    def payload(self, request: Request, sampling: SamplingSettings) -> dict[str, Any]:
        system = request.system_prompt if request.system_prompt is not None else self.system_prompt
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": request.prompt}]
        body: dict[str, Any] = {"model": self.name, "messages": messages, "temperature": sampling.temperature,
                                "top_p": sampling.top_p, self.max_tokens_param: sampling.max_new_tokens,
                                "seed": request.seed, "n": 1}
        if self.want_logprobs and not self._logprobs_refused:
            body["logprobs"] = True
            if self.top_logprobs:
                body["top_logprobs"] = self.top_logprobs
        body.update(self.extra_body)
        return body

    def request_settings(self, request: Request, sampling: SamplingSettings) -> dict[str, Any]:
        return {k: v for k, v in self.payload(request, sampling).items() if k != "messages"}

    async def acomplete(self, request: Request, sampling: SamplingSettings, *,
                        base_url: str | None = None) -> tuple[Completion, dict[str, Any]]:
        payload = self.payload(request, sampling)
        t0 = time.perf_counter()
        try:
            _, body = await self._post("/chat/completions", payload, base_url)
        except FatalError as e:
            if e.status in (400, 422) and "logprob" in str(e).lower() and payload.get("logprobs"):
                # the endpoint offers no log-probabilities: ask again without them
                self._logprobs_refused = True
                raise TransientError("endpoint refuses logprobs; asking without them", kind="no-logprobs",
                                     retry_after=0.0) from None
            raise
        seconds = time.perf_counter() - t0
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise TransientError("response has no choices", kind="empty-choices")
        choice = choices[0]
        if not isinstance(choice, dict):
            raise TransientError("response choice is not an object", kind="malformed")
        message = choice.get("message") or {}
        text = message.get("content")
        if text is None:
            text = choice.get("text")
        if not isinstance(text, str):
            if message.get("refusal"):
                text = str(message["refusal"])
            else:
                raise TransientError("response choice has no message content", kind="malformed")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        tin, tout = usage.get("prompt_tokens"), usage.get("completion_tokens")
        logprobs = _logprobs(choice.get("logprobs"))
        meta: dict[str, Any] = {"response_id": body.get("id"), "served_model": body.get("model"),
                                "system_fingerprint": body.get("system_fingerprint"), "usage": usage or None}
        if logprobs is not None:
            meta["logprobs"] = logprobs
        meta = {k: v for k, v in meta.items() if v is not None}
        completion = Completion(text=text.strip(), finish_reason=choice.get("finish_reason") or "stop",
                                tokens_in=tin if isinstance(tin, int) else None,
                                tokens_out=tout if isinstance(tout, int) else None, seconds=seconds, meta=meta)
        return completion, {"response_id": body.get("id"), "served_model": body.get("model"),
                            "time": now_iso()}


def _logprobs(lp: Any) -> list[list] | None:
    """[[token, logprob], ...] from an OpenAI ``logprobs`` object (chat or legacy form)."""
    if not isinstance(lp, dict):
        return None
    content = lp.get("content")
    if isinstance(content, list):
        out = []
        for t in content:
            if isinstance(t, dict) and "logprob" in t:
                entry = [t.get("token"), t.get("logprob")]
                if t.get("top_logprobs"):
                    entry.append([[x.get("token"), x.get("logprob")] for x in t["top_logprobs"] if isinstance(x, dict)])
                out.append(entry)
        return out
    tokens, values = lp.get("tokens"), lp.get("token_logprobs")
    if isinstance(tokens, list) and isinstance(values, list):
        return [[t, v] for t, v in zip(tokens, values)]
    return None
