"""``transcripts/<file.jsonl[.gz]>#<model>``: answers collected elsewhere.

Records are JSON lines ``{"model", "prompt_id", "prompt", "output", ...}`` (the format of the
public data in ``../shared/data/``). A file may hold many models; pick one with ``#<model>``
after the path or the ``model`` option. Several records of one (model, prompt_id) are read as
samples 0, 1, ... in file order. A transcript cannot be asked anything new: a prompt it lacks
is answered ``None`` and left out of the analysis.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import TranscriptError
from .base import Completion, Model, Request, SamplingSettings

REQUIRED = ("model", "prompt_id", "output")


@lru_cache(maxsize=8)
def read_transcripts(path: str) -> tuple[str, dict[str, dict[str, list[dict]]]]:
    """(sha256 of the file, {model: {prompt_id: [records...]}}), cached per path."""
    p = Path(path)
    if not p.exists():
        raise TranscriptError(f"{path}: transcripts file not found; give the path of a .jsonl or .jsonl.gz file")
    raw = p.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if p.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except OSError:
            raise TranscriptError(f"{path}: not a valid gzip file; decompress it or fix the extension") from None
    by_model: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for lineno, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise TranscriptError(f"{path}:{lineno}: not a JSON object; each line must be "
                                  '{"model", "prompt_id", "prompt", "output"}') from None
        missing = [k for k in REQUIRED if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise TranscriptError(f"{path}:{lineno}: record lacks {', '.join(missing)}; each line must be "
                                  '{"model", "prompt_id", "prompt", "output"}')
        by_model[str(rec["model"])][str(rec["prompt_id"])].append(rec)
    return digest, {m: dict(v) for m, v in by_model.items()}


def split_name(name: str, model: str | None) -> tuple[str, str | None]:
    if "#" in name:
        name, model = name.rsplit("#", 1)
    return name, model


class TranscriptsModel(Model):
    """One model's answers from a transcripts file."""

    provider = "transcripts"
    generates = False

    def __init__(self, name: str, *, model: str | None = None, system_prompt: str | None = None, **options: Any):
        path, model = split_name(name, model)
        super().__init__(path, system_prompt=system_prompt, **options)
        self.path = path
        self.digest, by_model = read_transcripts(path)
        if model is None:
            if len(by_model) != 1:
                known = ", ".join(sorted(by_model)[:8])
                raise TranscriptError(f"{path}: holds {len(by_model)} models; pick one with "
                                      f"transcripts/{path}#<model> (e.g. {known})")
            model = next(iter(by_model))
        if model not in by_model:
            close = [m for m in sorted(by_model) if model.lower() in m.lower() or m.lower() in model.lower()]
            hint = f" (did you mean {', '.join(close[:4])}?)" if close else f"; models in it: {', '.join(sorted(by_model)[:10])}"
            raise TranscriptError(f"{path}: no records of model {model!r}{hint}")
        self.model = model
        self.records = by_model[model]

    def identity(self) -> dict[str, Any]:
        return {"provider": self.provider, "file": Path(self.path).name, "file_sha256": self.digest,
                "model": self.model}

    def key(self, sampling: SamplingSettings) -> str:
        # sampling settings were decided by whoever collected the transcript, not by us
        from .base import stable_hash

        return stable_hash({"identity": self.identity()})[:32]

    def prompts(self) -> dict[str, str]:
        """prompt_id -> prompt text of every record of this model."""
        return {pid: str(recs[0].get("prompt", "")) for pid, recs in self.records.items()}

    def generate(self, requests: list[Request], sampling: SamplingSettings) -> list[Completion | None]:
        out: list[Completion | None] = []
        for r in requests:
            recs = self.records.get(r.prompt_id, [])
            if r.sample < len(recs):
                rec = recs[r.sample]
                out.append(Completion(text=str(rec.get("output") or ""), finish_reason="transcript",
                                      meta={k: rec[k] for k in ("tstamp", "origin", "source") if k in rec}))
            else:
                out.append(None)
        return out
