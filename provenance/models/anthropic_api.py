"""``anthropic/<model>``: Anthropic's native Messages API (``POST /v1/messages``).

Options as for ``openai/`` (``base_url``, ``api_key_env``, ``prices``, ``extra_body`` and
the transport settings); the key is sent as ``x-api-key``. The Messages API takes no seed
and returns no log-probabilities, so a sample cannot be reproduced from its seed (the seed
is still recorded in the store) and none are stored.
"""

from __future__ import annotations

import time
from typing import Any

from .base import Completion, Request, SamplingSettings
from .remote import RemoteModel, TransientError, now_iso

ANTHROPIC_BASE_URL = "https://api.anthropic.com/v1"
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicModel(RemoteModel):
    provider = "anthropic"
    default_base_url = ANTHROPIC_BASE_URL
    default_key_env = "ANTHROPIC_API_KEY"
    known_options = ("anthropic_version",)

    def __init__(self, name: str, **kw: Any):
        super().__init__(name, **kw)
        self.version = str(self.options.get("anthropic_version", ANTHROPIC_VERSION))

    def headers(self) -> dict[str, str]:
        key = self._api_key()
        return {"anthropic-version": self.version, **({"x-api-key": key} if key else {})}

    def payload(self, request: Request, sampling: SamplingSettings) -> dict[str, Any]:
        system = request.system_prompt if request.system_prompt is not None else self.system_prompt
        body: dict[str, Any] = {"model": self.name, "max_tokens": sampling.max_new_tokens,
                                "messages": [{"role": "user", "content": request.prompt}],
                                "temperature": sampling.temperature}
        if sampling.top_p < 1.0:
            body["top_p"] = sampling.top_p
        if system:
            body["system"] = system
        body.update(self.extra_body)
        return body

    def request_settings(self, request: Request, sampling: SamplingSettings) -> dict[str, Any]:
        s = {k: v for k, v in self.payload(request, sampling).items() if k not in ("messages", "system")}
        return {**s, "seed": request.seed, "seed_sent": False}

    async def acomplete(self, request: Request, sampling: SamplingSettings, *,
                        base_url: str | None = None) -> tuple[Completion, dict[str, Any]]:
        t0 = time.perf_counter()
        _, body = await self._post("/messages", self.payload(request, sampling), base_url)
        seconds = time.perf_counter() - t0
        content = body.get("content")
        if not isinstance(content, list):
            raise TransientError("response has no content list", kind="malformed")
        texts = [c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text"]
        if not texts and body.get("stop_reason") != "max_tokens":
            raise TransientError("response has no text content", kind="empty-choices")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        tin, tout = usage.get("input_tokens"), usage.get("output_tokens")
        finish = {"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop"}.get(body.get("stop_reason"),
                                                                                           body.get("stop_reason") or "stop")
        meta = {k: v for k, v in {"response_id": body.get("id"), "served_model": body.get("model"),
                                  "usage": usage or None}.items() if v is not None}
        completion = Completion(text="".join(texts).strip(), finish_reason=finish,
                                tokens_in=tin if isinstance(tin, int) else None,
                                tokens_out=tout if isinstance(tout, int) else None, seconds=seconds, meta=meta)
        return completion, {"response_id": body.get("id"), "served_model": body.get("model"), "time": now_iso()}
