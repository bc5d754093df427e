"""``hf/<path>``: a local Hugging Face causal language model, run with torch.

Generation is batched with left padding. Sampling is seeded *per request*: a logits
processor draws each row's next token with that row's own ``torch.Generator``, so an answer
does not depend on which requests shared its batch. The chat template is used when the
tokenizer has one; otherwise the prompt is completed as plain text.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .base import Completion, Model, Request, SamplingSettings

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def weights_hash(path: Path) -> str:
    """SHA-256 over the weight files of a model folder (sorted by name)."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        raise ModelError(f"{path}: no weight files (*.safetensors) found; point hf/ at a model folder")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class _PerRowSampler:
    """Logits processor that samples each row with its own generator and returns a one-hot
    score, so greedy search in ``generate`` keeps exactly the sampled token."""

    def __init__(self, generators, temperature: float, top_p: float):
        self.generators = generators
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids, scores):
        import torch

        scores = scores.float()
        if self.temperature <= 0:
            choice = scores.argmax(dim=-1)
        else:
            probs = torch.softmax(scores / self.temperature, dim=-1)
            if self.top_p < 1.0:
                sorted_p, idx = probs.sort(dim=-1, descending=True)
                keep = sorted_p.cumsum(-1) - sorted_p < self.top_p
                sorted_p = sorted_p * keep
                probs = torch.zeros_like(probs).scatter(-1, idx, sorted_p)
                probs = probs / probs.sum(-1, keepdim=True)
            cdf = probs.cumsum(-1)
            u = torch.stack([torch.rand((), generator=g, device="cpu") for g in self.generators]).to(cdf.device)
            choice = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).squeeze(-1)
            choice = choice.clamp(max=scores.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, choice.unsqueeze(-1), 0.0)
        return out


class HFModel(Model):
    """A causal LM from a local folder (or an id already in the local Hugging Face cache)."""

    provider = "hf"
    white_box = True

    def __init__(self, name: str, *, system_prompt: str | None = None, device: str = "auto",
                 batch_size: int = 32, dtype: str = "auto", revision: str | None = None, **options: Any):
        super().__init__(name, system_prompt=system_prompt, **options)
        self.path = Path(name).expanduser()
        if not self.path.exists():
            if name.count("/") == 1 and not name.startswith((".", "/", "~")):
                # looks like a hub id ("org/model"): use the local cache, never download
                self.path = self._cached_hub_path(name, revision)
            else:
                raise ModelError(f"hf/{name}: no such model folder; give the path of a folder with config.json "
                                 f"and weights (e.g. hf/fixtures/zoo/models/teacher-a)")
        if not (self.path / "config.json").exists():
            raise ModelError(f"hf/{name}: {self.path / 'config.json'} not found; point hf/ at a transformers model folder")
        self.device_request = device
        self.batch_size = int(batch_size)
        self.dtype_request = dtype
        self.revision = revision
        self._model = None
        self._tokenizer = None
        self._identity: dict[str, Any] | None = None

    @staticmethod
    def _cached_hub_path(name: str, revision: str | None) -> Path:
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(name, revision=revision, local_files_only=True))
        except Exception:
            raise ModelError(f"hf/{name}: not a local folder and not in the local Hugging Face cache; "
                             f"download it first or give a local path") from None

    # -- loading -----------------------------------------------------------------------------
    def _load(self):
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = pick_device(self.device_request)
        dtype = {"auto": torch.float32 if device == "cpu" else torch.bfloat16, "float32": torch.float32,
                 "bfloat16": torch.bfloat16, "float16": torch.float16}[self.dtype_request]
        try:
            tok = AutoTokenizer.from_pretrained(self.path)
        except Exception as e:
            raise ModelError(f"hf/{self.name}: tokenizer in {self.path} could not be loaded "
                             f"({type(e).__name__}); check tokenizer.json / tokenizer_config.json") from None
        try:
            model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype)
        except Exception as e:
            bad = next((self.path / f for f in WEIGHT_FILES if (self.path / f).exists()), self.path)
            raise ModelError(f"hf/{self.name}: weights file {bad} could not be loaded ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:120]}); restore or re-download it") from None
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self._tokenizer, self._model, self.device = tok, model.to(device).eval(), device

    @property
    def tokenizer(self):
        self._load()
        return self._tokenizer

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            template = None
            cfg = self.path / "tokenizer_config.json"
            jinja = self.path / "chat_template.jinja"
            if jinja.exists():
                template = jinja.read_text(encoding="utf-8")
            elif cfg.exists():
                import json

                template = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
            self._identity = {
                "provider": self.provider,
                "name": self.path.name,
                "weights_sha256": weights_hash(self.path),
                "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest() if template else None,
                "system_prompt": self.system_prompt,
                "revision": self.revision,
            }
        return self._identity

    # -- prompting ---------------------------------------------------------------------------
    def render(self, prompt: str, system_prompt: str | None = None) -> str:
        """The exact text fed to the model: chat template if any, else the bare prompt."""
        tok = self.tokenizer
        system = system_prompt if system_prompt is not None else self.system_prompt
        if tok.chat_template:
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}]
            return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return (system + "\n\n" if system else "") + prompt

    def generate(self, requests: list[Request], sampling: SamplingSettings) -> list[Completion | None]:
        import torch
        from transformers import LogitsProcessorList

        self._load()
        tok, model = self._tokenizer, self._model
        out: list[Completion | None] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            t0 = time.perf_counter()
            texts = [self.render(r.prompt, r.system_prompt) for r in batch]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=not tok.chat_template).to(self.device)
            gens = [torch.Generator(device="cpu").manual_seed(r.seed) for r in batch]
            sampler = _PerRowSampler(gens, sampling.temperature, sampling.top_p)
            with torch.no_grad():
                ids = model.generate(**enc, do_sample=False, max_new_tokens=sampling.max_new_tokens,
                                     logits_processor=LogitsProcessorList([sampler]),
                                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                                     temperature=None, top_p=None, top_k=None)
            new = ids[:, enc["input_ids"].shape[1]:].cpu()
            seconds = (time.perf_counter() - t0) / len(batch)
            for i, row in enumerate(new):
                n_in = int(enc["attention_mask"][i].sum())
                ended = (row == tok.eos_token_id).nonzero()
                n_out = int(ended[0, 0]) + 1 if len(ended) else len(row)
                text = tok.decode(row[:n_out], skip_special_tokens=True).strip()
                out.append(Completion(text=text, finish_reason="stop" if len(ended) else "length",
                                      tokens_in=n_in, tokens_out=n_out, seconds=seconds))
        return out

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[tuple[float, int]]:
        """Sum of log p(continuation | prompt) under the chat template, and token count."""
        return [(sum(lp), len(lp)) for lp, _, _ in self.token_scores(pairs)]

    def token_scores(self, pairs: list[tuple[str, str]]) -> list[tuple[list[float], list[int], list[int]]]:
        """For each (prompt, continuation): per continuation token its log-probability, its id,
        and the model's most likely token at that position (white-box checks). Batches are
        left-padded and prompts rendered exactly as in generation."""
        import torch

        self._load()
        tok, model = self._tokenizer, self._model
        results: list[tuple[list[float], list[int], list[int]]] = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            rows = []
            for prompt, cont in chunk:
                p_ids = tok(self.render(prompt), add_special_tokens=not tok.chat_template)["input_ids"]
                c_ids = tok(cont + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
                rows.append((p_ids, c_ids))
            width = max(len(p) + len(c) for p, c in rows)
            ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
            att = torch.zeros_like(ids)
            for i, (p, c) in enumerate(rows):  # left padding, as in generation
                seq = p + c
                ids[i, width - len(seq):] = torch.tensor(seq)
                att[i, width - len(seq):] = 1
            with torch.no_grad():
                logits = model(input_ids=ids.to(self.device), attention_mask=att.to(self.device)).logits.float()
                logp = torch.log_softmax(logits, -1).cpu()
            top = logp.argmax(-1)
            for i, (p, c) in enumerate(rows):
                pos = torch.arange(width - len(c) - 1, width - 1)
                results.append((logp[i, pos, torch.tensor(c)].tolist(), list(c), top[i, pos].tolist()))
        return results

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
