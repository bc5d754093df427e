"""Model strings -> model backends.

``provider/name`` as in inspect_ai: ``hf/<local folder>``, ``vllm/<local folder>`` (the same
weights on vLLM's offline engine), ``transcripts/<file>#<model>``, ``mock/<name>``,
``openai/<model>``, ``anthropic/<model>``. Backends import their heavy dependencies (torch,
transformers, vllm) only when a model of theirs is loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import SpecError
from .base import Completion, Model, Request, SamplingSettings, sample_seed, stable_hash, text_hash

PROVIDERS = {
    "hf": "provenance.models.hf:HFModel",
    "vllm": "provenance.models.vllm_offline:VLLMModel",
    "transcripts": "provenance.models.transcripts:TranscriptsModel",
    "mock": "provenance.models.mock:MockModel",
    "openai": "provenance.models.openai_compat:OpenAIModel",
    "anthropic": "provenance.models.anthropic_api:AnthropicModel",
}

__all__ = ["Completion", "Model", "Request", "SamplingSettings", "load_model", "parse_model_string",
           "sample_seed", "stable_hash", "text_hash", "PROVIDERS"]


def parse_model_string(model: str) -> tuple[str, str]:
    """Split ``provider/name``; the name may itself contain slashes."""
    if not isinstance(model, str) or "/" not in model:
        raise SpecError(f"model string {model!r} lacks a provider; write provider/name, one of "
                        f"{', '.join(p + '/...' for p in PROVIDERS)}")
    provider, name = model.split("/", 1)
    if provider not in PROVIDERS:
        raise SpecError(f"model string {model!r}: unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    if not name:
        raise SpecError(f"model string {model!r} has no name after the provider; e.g. hf/path/to/model")
    return provider, name


def load_model(model: str, /, **options: Any) -> Model:
    """Build the backend for a model string. Loading weights is deferred until first use."""
    provider, name = parse_model_string(model)
    module, cls = PROVIDERS[provider].split(":")
    obj = getattr(importlib.import_module(module), cls)(name, **options)
    obj.source = (model, dict(options))  # how to build it again elsewhere (a Ray worker)
    return obj
