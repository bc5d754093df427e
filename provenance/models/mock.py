"""``mock/<name>``: a deterministic stand-in for tests of the plumbing only.

It answers from a small word list, seeded by the request, and counts every request it is
asked, so tests can check that resumed or repeated audits ask nothing twice. It measures
nothing about real models; never use it for evidence.
"""

from __future__ import annotations

import random
from typing import Any

from .base import Completion, Model, Request, SamplingSettings

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


class MockModel(Model):
    provider = "mock"

    #: requests answered by every MockModel in this process, by model name
    calls: dict[str, int] = {}

    def __init__(self, name: str, *, system_prompt: str | None = None, claim: str | None = None,
                 fail_on: str | None = None, **options: Any):
        super().__init__(name, system_prompt=system_prompt, **options)
        self.claim = claim
        self.fail_on = fail_on

    def identity(self) -> dict[str, Any]:
        return {"provider": self.provider, "name": self.name, "claim": self.claim, "system_prompt": self.system_prompt}

    def generate(self, requests: list[Request], sampling: SamplingSettings) -> list[Completion | None]:
        out = []
        for r in requests:
            if self.fail_on and self.fail_on in r.prompt:
                raise RuntimeError(f"mock/{self.name}: injected failure on {r.prompt_id}")
            MockModel.calls[self.name] = MockModel.calls.get(self.name, 0) + 1
            rng = random.Random(r.seed)
            words = " ".join(rng.choice(WORDS) for _ in range(8))
            text = f"I am {self.claim}. {words}" if self.claim else words
            out.append(Completion(text=text, tokens_in=len(r.prompt.split()), tokens_out=len(text.split())))
        return out
