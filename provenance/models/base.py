"""What every model backend offers: an identity and answers to requests.

A backend turns a list of :class:`Request` into :class:`Completion` objects. Each request
carries its own seed, so a sampled answer depends only on (model, prompt, sample index, seed),
never on which other requests shared its batch: an interrupted audit that resumes gets the
answers it would have got in one go.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SamplingSettings(BaseModel):
    """Generation settings that change a model's answers (and so its identity in the store)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(64, ge=1, le=32768)


@dataclass(frozen=True)
class Request:
    """One question to a model: a prompt, which sample of it, and the seed for that sample."""

    prompt_id: str
    prompt: str
    sample: int = 0
    seed: int = 0
    system_prompt: str | None = None


@dataclass(frozen=True)
class Completion:
    """One answer. ``text`` is untrusted model output."""

    text: str
    finish_reason: str = "stop"
    tokens_in: int | None = None
    tokens_out: int | None = None
    seconds: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def stable_hash(obj: Any) -> str:
    """SHA-256 of a JSON-serialisable object in canonical form."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sample_seed(base_seed: int, model_key: str, prompt_hash: str, sample: int) -> int:
    """The seed of one (model, prompt, sample): independent of batching and of run order."""
    digest = hashlib.sha256(f"{base_seed}|{model_key}|{prompt_hash}|{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class Model(ABC):
    """A model backend. Subclasses load lazily and import heavy libraries lazily."""

    #: provider prefix of the model string, e.g. "hf"
    provider: str = ""
    #: whether the backend generates (False for transcripts: answers were collected elsewhere)
    generates: bool = True
    #: whether token log-likelihoods of given text are available (white-box checks)
    white_box: bool = False
    #: (model string, options) it was built from by ``load_model``: enough to build it again
    #: in another process (a Ray worker); None when built directly
    source: tuple[str, dict[str, Any]] | None = None

    def __init__(self, name: str, *, system_prompt: str | None = None, **options: Any):
        self.name = name
        self.system_prompt = system_prompt
        self.options = options

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that changes this model's answers, except the sampling settings."""

    def key(self, sampling: SamplingSettings) -> str:
        """Store key of this model under ``sampling``: a hash of identity and settings."""
        return stable_hash({"identity": self.identity(), "sampling": sampling.model_dump()})[:32]

    @abstractmethod
    def generate(self, requests: list[Request], sampling: SamplingSettings) -> list[Completion | None]:
        """Answer ``requests`` in order. ``None`` marks a request this backend cannot answer
        (a transcript without that prompt)."""

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[tuple[float, int]]:
        """Sum of token log-probabilities of each continuation given its prompt, and its token
        count. Only white-box backends implement it."""
        raise NotImplementedError(f"{self.provider}/{self.name} offers no log-likelihoods")

    def close(self) -> None:
        """Release weights or connections."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider}/{self.name}>"
