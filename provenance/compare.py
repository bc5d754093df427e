"""Pool mode: compare many models at once (``provenance compare``).

Where an audit asks "is this candidate closer to these references than the controls are?",
a comparison looks at a whole pool: every model of a transcripts file, or a list of local
models. It reports the matrix of pairwise similarities with their intervals and, for each
chosen candidate, a ranking of the other models as possible teachers, with how often each
ranks first across bootstrap replicates. Like an audit, it collects what is missing into a
store first and then runs from the store alone.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import SpecError

DEFAULT_BATTERIES = ["self_id", "quirks", "ngram"]
TRANSCRIPT_BATTERIES = ["transcripts:ngram", "transcripts:self_id"]


def transcript_models(path: str | Path) -> dict[str, str]:
    """label -> model string of every model in a transcripts file, in file order."""
    p = Path(path)
    if not p.exists():
        raise SpecError(f"{p}: transcripts file not found; give the path of a .jsonl or .jsonl.gz file")
    opener = gzip.open if p.suffix == ".gz" else open
    seen: dict[str, str] = {}
    with opener(p, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                m = str(json.loads(line).get("model"))
                seen.setdefault(m, f"transcripts/{p}#{m}")
    if not seen:
        raise SpecError(f"{p}: no records; each line must be {{\"model\", \"prompt_id\", \"prompt\", \"output\"}}")
    return seen


def labelled(model_strings: list[str]) -> dict[str, str]:
    """label -> model string, labels as an audit would give them, checked unique."""
    from .audit import ModelEntry

    out: dict[str, str] = {}
    for s in model_strings:
        label = ModelEntry(model=s).default_label()
        if label in out:
            raise SpecError(f"two models are labelled {label!r}; give distinct paths or names")
        out[label] = s
    return out


def load_pool(models: dict[str, str], batteries: list[str] | None, store_path: Path, *, seed: int = 0,
              samples: int | None = None, progress: bool = False, collect_missing: bool = True):
    """(models, battery list, BatteryData list) for a pool, collecting what is missing."""
    from .analysis import load_battery_data
    from .battery import resolve_batteries
    from .collect import collect
    from .models import load_model
    from .store import Store

    loaded = {label: load_model(s) for label, s in models.items()}
    if batteries is None:
        batteries = TRANSCRIPT_BATTERIES if all(m.provider == "transcripts" for m in loaded.values()) \
            else DEFAULT_BATTERIES
    bats = resolve_batteries(batteries, loaded)
    with Store(store_path) as store:
        if collect_missing:
            collect(loaded, bats, store, seed=seed, samples=samples, progress=progress)
        datas = [load_battery_data(b, loaded, store, samples=samples) for b in bats]
    return loaded, bats, datas


def run_compare(models: dict[str, str], out: str | Path, *, batteries: list[str] | None = None,
                candidates: list[str] = (), controls: list[str] = (), seed: int = 0, n_resamples: int = 9999,
                confidence_level: float = 0.95, samples: int | None = None, store: str | None = None,
                progress: bool = True, collect_missing: bool = True) -> dict[str, Any]:
    """Collect, compare and write report.{json,md,html} into ``out``. Returns the report."""
    from .audit import tool_info
    from .models.base import stable_hash
    from .report import write_report
    from .stats.pool import pool_statistics

    if len(models) < 2:
        raise SpecError("a comparison needs at least two models")
    unknown = [m for m in [*candidates, *controls] if m not in models]
    if unknown:
        raise SpecError(f"not in the pool: {', '.join(unknown)}; use the labels of the pool's models "
                        f"(e.g. {', '.join(list(models)[:4])})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store_path = Path(store) if store else out / "store.sqlite"
    loaded, bats, datas = load_pool(models, batteries, store_path, seed=seed, samples=samples, progress=progress,
                                    collect_missing=collect_missing)
    st = pool_statistics([d.table() for d in datas], list(models), candidates=list(candidates),
                         controls=list(controls), confidence_level=confidence_level, n_resamples=n_resamples, rng=seed)
    caveats = []
    if not controls:
        caveats.append("No controls were given: teacher rankings are by similarity alone, with no baseline.")
    if any(m.provider == "transcripts" for m in loaded.values()):
        caveats.append("Some models are transcripts collected elsewhere: their sampling settings are unknown "
                       "and may differ between models.")
    for d in datas:
        for label in d.features:
            if d.answered(label) == 0:
                caveats.append(f"Battery {d.battery.name}: {label} gave no usable response; its pairs have no "
                               f"interval.")
    report = {
        "schema_version": "1",
        "kind": "compare",
        "tool": tool_info(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pool": {"models": list(models), "candidates": list(candidates), "controls": list(controls),
                 "batteries": [b.name for b in bats], "seed": seed, "samples": samples},
        "models": [{"label": label, "model_string": models[label], "provider": m.provider,
                    "identity": m.identity(), "identity_hash": stable_hash(m.identity())[:32]}
                   for label, m in loaded.items()],
        "batteries": [{"name": b.name, "version": b.version, "scorer": b.scorer, "content_hash": b.content_hash,
                       "n_prompts": len(b.prompts)} for b in bats],
        "statistics": st.describe(),
        "pairs": [p.to_dict() for p in st.pairs],
        "rankings": [r.to_dict() for r in st.rankings],
        "caveats": caveats,
    }
    write_report(report, out)
    for m in loaded.values():
        m.close()
    return report
