"""``vllm/<path>``: local weights run by vLLM's offline engine on a GPU.

The same model as ``hf/<path>`` for the same folder, run by another engine:

* **identity**: exactly what ``hf/`` records (weights hash, chat template hash, system prompt,
  revision), with ``provider = "vllm"``, so the store keeps the two engines' answers apart
  and a report says which engine answered;
* **prompts**: rendered by the folder's own tokenizer and chat template, exactly as ``hf/``
  renders them, and handed to vLLM as token ids (vLLM never re-tokenises or re-templates);
* **sampling and seeds**: one vLLM request per (prompt, sample) with that sample's seed
  (``SamplingParams(seed=...)``, ``n=1``), so an answer depends on (model, prompt, sample,
  seed) and not on which requests shared a batch; temperature 0 is greedy, as in ``hf/``.
  vLLM draws random numbers differently from ``hf/``, so *sampled* answers of the two engines
  differ for the same seed (greedy ones agree up to floating-point ties);
* **log-probabilities**: each answer's token log-probabilities are stored (``meta.logprobs``,
  as for ``openai/``), and the model is white-box: ``loglikelihood`` and ``token_scores``
  (the likelihood battery) come from vLLM's prompt log-probabilities over the same token ids
  that ``hf/`` scores.

vLLM is imported only when a ``vllm/`` model is loaded. Without vLLM, or without a GPU, loading
one fails with one line that says so and how to go on (``pip install 'provenance[vllm]'`` on a
machine with a CUDA GPU, or ``hf/`` with the same path). One vLLM engine is kept at a time in a
process: asking another ``vllm/`` model frees the GPU memory of the previous one first.

Options: ``dtype`` (``auto`` = bfloat16, as ``hf/`` uses on a GPU; ``float32``, ``float16``,
``bfloat16``), ``logprobs`` (default true), ``top_logprobs`` (default 0), ``engine_args`` (a
table passed to ``vllm.LLM``: ``gpu_memory_utilization``, ``tensor_parallel_size``,
``max_model_len``, ``enforce_eager``, ...). None of them is part of the identity, as ``hf/``'s
``dtype`` and ``device`` are not.
"""

from __future__ import annotations

import gc
import importlib.util
import time
from typing import Any

from ..errors import ModelError, SpecError
from .base import Completion, Request, SamplingSettings
from .hf import HFModel

DTYPES = ("auto", "float32", "float16", "bfloat16")

#: the one vLLM engine alive in this process (GPU memory is not shared between engines)
_ACTIVE: "VLLMModel | None" = None


def unavailable_reason() -> str | None:
    """Why vLLM cannot run here (``"vllm not installed"``, ``"no CUDA GPU"``), or None."""
    if importlib.util.find_spec("vllm") is None:
        return "vllm not installed"
    try:
        import torch
    except ImportError:
        return "no CUDA GPU"
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    return None


class VLLMModel(HFModel):
    """A local model folder served by ``vllm.LLM`` (see the module doc)."""

    provider = "vllm"
    white_box = True

    def __init__(self, name: str, *, system_prompt: str | None = None, dtype: str = "auto", logprobs: bool = True,
                 top_logprobs: int = 0, engine_args: dict[str, Any] | None = None, batch_size: int = 256,
                 revision: str | None = None, **options: Any):
        why = unavailable_reason()
        if why == "vllm not installed":
            raise ModelError(f"vllm/{name}: vLLM is not installed; pip install 'provenance[vllm]' (or pip install "
                             f"vllm) on a machine with a CUDA GPU, or use hf/{name}")
        if why is not None:
            raise ModelError(f"vllm/{name}: no CUDA GPU found (torch.cuda.is_available() is false) and vLLM needs "
                             f"one; run on a machine with a CUDA GPU, or use hf/{name}")
        if dtype not in DTYPES:
            raise SpecError(f"vllm/{name}: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        if engine_args is not None and not isinstance(engine_args, dict):
            raise SpecError(f"vllm/{name}: engine_args must be a table of vllm.LLM arguments, "
                            f"e.g. engine_args = {{gpu_memory_utilization = 0.5}}")
        unknown = set(options) - {"device"}
        if unknown:
            raise SpecError(f"vllm/{name}: unknown option(s) {', '.join(sorted(unknown))}; known: dtype, logprobs, "
                            f"top_logprobs, engine_args, batch_size, revision")
        options.pop("device", None)
        super().__init__(name, system_prompt=system_prompt, device="cuda", batch_size=batch_size, dtype=dtype,
                         revision=revision)
        self.want_logprobs = bool(logprobs)
        self.top_logprobs = int(top_logprobs)
        self.engine_args = dict(engine_args or {})
        self._llm = None

    # -- loading -----------------------------------------------------------------------------
    def _load(self):
        """The folder's tokenizer (rendering and decoding are ``hf/``'s own)."""
        if self._tokenizer is not None:
            return
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(self.path)
        except Exception as e:
            raise ModelError(f"vllm/{self.name}: tokenizer in {self.path} could not be loaded "
                             f"({type(e).__name__}); check tokenizer.json / tokenizer_config.json") from None
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self._tokenizer, self.device = tok, "cuda"

    def engine(self):
        """The ``vllm.LLM`` of this model, started on first use (after freeing any other)."""
        global _ACTIVE
        if self._llm is not None:
            return self._llm
        if _ACTIVE is not None and _ACTIVE is not self:
            _ACTIVE.close()
        try:
            from vllm import LLM
        except ImportError as e:
            raise ModelError(f"vllm/{self.name}: vLLM could not be imported ({str(e).splitlines()[0][:120]}); "
                             f"reinstall it (pip install 'provenance[vllm]') or use hf/{self.name}") from None
        dtype = "bfloat16" if self.dtype_request == "auto" else self.dtype_request
        kw = {"model": str(self.path), "tokenizer": str(self.path), "dtype": dtype, "seed": 0, **self.engine_args}
        try:
            self._llm = LLM(**kw)
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ModelError(f"vllm/{self.name}: vLLM could not start on {self.path} ({type(e).__name__}: {first}); "
                             f"check engine_args (e.g. gpu_memory_utilization, max_model_len) or use "
                             f"hf/{self.name}") from None
        _ACTIVE = self
        return self._llm

    def _prompt_ids(self, prompt: str, system_prompt: str | None = None) -> list[int]:
        tok = self.tokenizer
        return list(tok(self.render(prompt, system_prompt), add_special_tokens=not tok.chat_template)["input_ids"])

    # -- generation --------------------------------------------------------------------------
    def sampling_params(self, request: Request, sampling: SamplingSettings):
        """vLLM's settings for one request: its own seed, one sample, and a stop at the
        tokenizer's end-of-sequence token only, as ``hf/`` (``ignore_eos`` keeps vLLM from also
        stopping at other end tokens that a generation_config.json may list)."""
        from vllm import SamplingParams

        eos = self.tokenizer.eos_token_id
        return SamplingParams(n=1, temperature=sampling.temperature, top_p=sampling.top_p,
                              max_tokens=sampling.max_new_tokens, seed=request.seed,
                              stop_token_ids=[eos] if eos is not None else None, ignore_eos=eos is not None,
                              logprobs=self.top_logprobs if self.want_logprobs else None)

    def generate(self, requests: list[Request], sampling: SamplingSettings) -> list[Completion | None]:
        tok = self.tokenizer
        llm = self.engine()
        out: list[Completion | None] = []
        eos = tok.eos_token_id
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            t0 = time.perf_counter()
            prompts = [{"prompt_token_ids": self._prompt_ids(r.prompt, r.system_prompt)} for r in batch]
            results = self._run(llm, prompts, [self.sampling_params(r, sampling) for r in batch])
            seconds = (time.perf_counter() - t0) / max(len(batch), 1)
            for p, res in zip(prompts, results):
                o = res.outputs[0]
                ids = list(o.token_ids)
                stopped = o.finish_reason != "length"
                if ids and ids[-1] == eos:
                    body = ids[:-1]
                else:
                    body = ids
                # hf/ counts the end-of-sequence token among the tokens out
                n_out = len(body) + (1 if stopped else 0)
                text = tok.decode(body, skip_special_tokens=True).strip()
                meta: dict[str, Any] = {}
                if self.want_logprobs and o.logprobs is not None:
                    meta["logprobs"] = _sample_logprobs(tok, ids, o.logprobs)
                out.append(Completion(text=text, finish_reason="stop" if stopped else "length",
                                      tokens_in=len(p["prompt_token_ids"]), tokens_out=n_out, seconds=seconds,
                                      meta=meta))
        return out

    def _run(self, llm, prompts, params):
        """``llm.generate``; an engine error becomes one line naming the model."""
        try:
            return llm.generate(prompts, params, use_tqdm=False)
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ModelError(f"vllm/{self.name}: vLLM failed ({type(e).__name__}: {first}); a prompt longer than "
                             f"the model's context (engine_args.max_model_len) is a common cause") from None

    # -- white-box ---------------------------------------------------------------------------
    def token_scores(self, pairs: list[tuple[str, str]]) -> list[tuple[list[float], list[int], list[int]]]:
        """As ``hf/``: per continuation token its log-probability, its id and the most likely
        token there, from vLLM's prompt log-probabilities over the same token ids."""
        from vllm import SamplingParams

        tok = self.tokenizer
        llm = self.engine()
        rows = []
        for prompt, cont in pairs:
            p_ids = self._prompt_ids(prompt)
            c_ids = list(tok(cont + (tok.eos_token or ""), add_special_tokens=False)["input_ids"])
            rows.append((p_ids, c_ids))
        params = SamplingParams(n=1, temperature=0.0, max_tokens=1, prompt_logprobs=1)
        results: list[tuple[list[float], list[int], list[int]]] = []
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            outs = self._run(llm, [{"prompt_token_ids": p + c} for p, c in chunk], params)
            for (p, c), res in zip(chunk, outs):
                plp = res.prompt_logprobs
                lps, tops = [], []
                for j, tid in enumerate(c):
                    at = plp[len(p) + j] or {}
                    lps.append(float(at[tid].logprob))
                    tops.append(next((k for k, v in at.items() if v.rank == 1), tid))
                results.append((lps, list(c), tops))
        return results

    def close(self) -> None:
        global _ACTIVE
        llm, self._llm = self._llm, None
        if _ACTIVE is self:
            _ACTIVE = None
        if llm is not None:
            shutdown = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            try:  # vLLM's V1 engine runs in a child process: end it, so its GPU memory is freed
                if shutdown is not None and hasattr(shutdown, "shutdown"):
                    shutdown.shutdown()
            except Exception:
                pass
            del llm
            gc.collect()
            try:
                import torch

                torch.cuda.empty_cache()
            except Exception:
                pass
        self._tokenizer = None


def _sample_logprobs(tok, ids: list[int], logprobs) -> list[list]:
    """[[token, logprob], ...] of the generated tokens (as ``openai/`` stores them), with the
    top alternatives when ``top_logprobs`` asked for them."""
    out = []
    for i, tid in enumerate(ids[: len(logprobs)]):
        at = logprobs[i] or {}
        if tid not in at:
            continue
        entry: list = [tok.decode([tid]), round(float(at[tid].logprob), 6)]
        alts = sorted(((v.rank or 0, k, v.logprob) for k, v in at.items() if v.rank is not None and k != tid))
        if alts:
            entry.append([[tok.decode([k]), round(float(lp), 6)] for _, k, lp in alts])
        out.append(entry)
    return out
