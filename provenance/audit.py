"""An audit: which models in which roles, asked which batteries, with which settings.

An audit is written as an audit file (TOML or YAML) that an investigator keeps with the case,
or given as CLI flags; both become an :class:`AuditSpec`. :func:`run_audit` runs the whole
flow (collect -> store -> score -> stats -> report) into an audit directory that holds the
store, the resolved spec and the report. :func:`analyse_audit` redoes everything after
collect from the store alone.
"""

from __future__ import annotations

import json
import platform
import tomllib
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import __version__
from .errors import SpecError
from .models import load_model, parse_model_string
from .models.base import Model, stable_hash
from .store import Store

DEFAULT_BATTERIES = ["self_id", "quirks", "ngram"]
SPEC_FILE = "audit.json"
STORE_FILE = "store.sqlite"
SCORES_FILE = "scores.csv"


class ModelEntry(BaseModel):
    """One model of an audit: its model string, an optional label and backend options."""

    model_config = ConfigDict(extra="forbid")

    model: str
    label: str | None = None
    system_prompt: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _check_model(cls, v: str) -> str:
        parse_model_string(v)
        return v

    def default_label(self) -> str:
        provider, name = parse_model_string(self.model)
        if provider == "transcripts" and "#" in name:
            return name.rsplit("#", 1)[1]
        if "model" in self.options:
            return str(self.options["model"])
        return Path(name.rstrip("/")).name or name


class AuditSpec(BaseModel):
    """Everything an audit needs to be re-run exactly."""

    model_config = ConfigDict(extra="forbid")

    candidate: ModelEntry
    references: list[ModelEntry] = Field(min_length=1)
    controls: list[ModelEntry] = Field(default_factory=list)
    batteries: list[str] = Field(default_factory=lambda: list(DEFAULT_BATTERIES), min_length=1)
    samples: int | None = Field(None, ge=1, le=1000)
    seed: int = 0
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0)
    n_resamples: int = Field(9999, ge=99)
    store: str | None = None

    @field_validator("candidate", mode="before")
    @classmethod
    def _one(cls, v):
        return {"model": v} if isinstance(v, str) else v

    @field_validator("references", "controls", mode="before")
    @classmethod
    def _many(cls, v):
        if isinstance(v, (str, dict)):
            v = [v]
        return [{"model": x} if isinstance(x, str) else x for x in v]

    def labelled(self) -> list[tuple[str, str, ModelEntry]]:
        """(label, role, entry) for every model, labels checked unique."""
        out, seen = [], set()
        for role, entries in (("candidate", [self.candidate]), ("reference", self.references), ("control", self.controls)):
            for e in entries:
                label = e.label or e.default_label()
                if label in seen:
                    raise SpecError(f"two models are labelled {label!r}; give each a distinct label "
                                    f"(label = \"...\" in the audit file)")
                seen.add(label)
                out.append((label, role, e))
        return out


def load_spec_file(path: str | Path) -> tuple[dict[str, Any], Path]:
    """Parse a TOML/YAML/JSON audit file into a dict (not yet validated)."""
    p = Path(path)
    if not p.exists():
        raise SpecError(f"{p}: audit file not found; give the path of a .toml or .yaml audit file")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            raise SpecError(f"{p}: unknown audit file type {p.suffix!r}; use .toml or .yaml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        first = str(e).splitlines()[0]
        raise SpecError(f"{p}: malformed audit file ({first}); fix the syntax") from None
    if not isinstance(data, dict):
        raise SpecError(f"{p}: an audit file must be a table of keys (candidate, references, controls, ...)")
    data = data.get("audit", data)
    return data, p.parent


def make_spec(data: dict[str, Any], where: str = "audit") -> AuditSpec:
    try:
        return AuditSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"]
        if isinstance(err.get("ctx", {}).get("error"), SpecError):
            msg = str(err["ctx"]["error"])
        raise SpecError(f"{where}: {loc}: {msg}; see README.md for the audit file format") from None


def resolve_paths(spec: AuditSpec, base: Path) -> AuditSpec:
    """Make relative hf/, vllm/ and transcripts/ paths of an audit file relative to the file, when
    they exist there (otherwise they stay relative to the working directory)."""
    def fix(e: ModelEntry) -> ModelEntry:
        provider, name = parse_model_string(e.model)
        if provider in ("hf", "vllm", "transcripts"):
            path, _, frag = name.partition("#")
            if not Path(path).is_absolute() and (base / path).exists() and not Path(path).exists():
                e = e.model_copy(update={"model": f"{provider}/{(base / path).resolve()}" + (f"#{frag}" if frag else "")})
        return e

    return spec.model_copy(update={"candidate": fix(spec.candidate), "references": [fix(e) for e in spec.references],
                                   "controls": [fix(e) for e in spec.controls]})


def build_models(spec: AuditSpec) -> tuple[dict[str, Model], dict[str, str], dict[str, str]]:
    """(label -> model, label -> role, label -> model string)."""
    models, roles, strings = {}, {}, {}
    for label, role, e in spec.labelled():
        models[label] = load_model(e.model, system_prompt=e.system_prompt, **e.options)
        roles[label] = role
        strings[label] = e.model
    return models, roles, strings


def tool_info() -> dict[str, Any]:
    pkgs = {}
    for name in ("torch", "transformers", "tokenizers", "numpy", "scipy", "statsmodels", "plotly", "pydantic"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"name": "provenance", "version": __version__, "python": platform.python_version(), "packages": pkgs}


def run_audit(spec: AuditSpec, out: str | Path, *, progress: bool = True, collect_missing: bool = True,
              limits=None, analyse: bool = True, executor=None) -> dict:
    """Collect what is missing, analyse, and write the report into ``out``. Returns the report.
    ``limits`` (:class:`provenance.fetch.Limits`) caps what API models may cost; a run that
    reaches a cap, or in which an API model fails for good, raises
    :class:`~provenance.errors.CollectionIncomplete` after storing all it collected.
    ``executor`` (:mod:`provenance.executors`; None: here, in this process) says where local
    models generate; it changes no answer, so it is not part of the spec."""
    from .battery import resolve_batteries
    from .collect import CollectStats, collect

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models, roles, strings = build_models(spec)
    batteries = resolve_batteries(spec.batteries, models)
    store_path = Path(spec.store) if spec.store else out / STORE_FILE
    (out / SPEC_FILE).write_text(spec.model_dump_json(indent=1) + "\n", encoding="utf-8")
    with Store(store_path) as store:
        if collect_missing:
            cstats = collect(models, batteries, store, seed=spec.seed, samples=spec.samples, progress=progress,
                             limits=limits, executor=executor)
            if cstats.failed or cstats.stopped:
                for m in models.values():
                    m.close()
                _incomplete(cstats, store)
            if not analyse:  # collect only (e.g. API answers now, the report later, offline)
                for m in models.values():
                    m.close()
                return {"collection": cstats.to_dict()}
        else:
            cstats = CollectStats()
        scores: list[dict] = []
        report = build_report(spec, models, roles, strings, batteries, store, cstats.to_dict(), scores=scores)
    from .report import write_report
    from .report.details import write_scores_csv

    write_report(report, out)
    write_scores_csv(scores, out / SCORES_FILE)
    for m in models.values():
        m.close()
    return report


def _incomplete(cstats, store: Store) -> None:
    from .errors import CollectionIncomplete

    lines = list(cstats.failed.values())
    if cstats.stopped:
        lines.append(cstats.stopped)
    else:
        lines.append(f"{cstats.requests} answers collected in this run and {store.count()} in all are stored in "
                     f"{store.path}; fix the above and run the same command again to resume")
    raise CollectionIncomplete(lines, at_cap=bool(cstats.stopped) and not cstats.failed)


def build_report(spec: AuditSpec, models: dict[str, Model], roles: dict[str, str], strings: dict[str, str],
                 batteries: list, store: Store, collection: dict, scores: list | None = None) -> dict:
    """The report dict of an audit, from the store alone. ``scores``, when given, receives
    every per-prompt pair score (the rows of scores.csv)."""
    from .analysis import evidence, load_battery_data, report_sections
    from .scorers.battery_stats import battery_statistics
    from .scorers.likelihood import prepare_white_box
    from .report.details import details_caveats, details_section, score_rows, usage_section

    candidate = next(label for label, r in roles.items() if r == "candidate")
    references = [label for label, r in roles.items() if r == "reference"]
    controls = [label for label, r in roles.items() if r == "control"]
    results, evid, caveats = [], [], []
    if not controls:
        caveats.append("No control models: no baseline exists, so only raw similarities are reported and no excess.")
    elif len(controls) == 1:
        caveats.append("Only one control model: the baseline rests on a single independent model.")
    if any(m.provider == "transcripts" for m in models.values()):
        caveats.append("Some models are transcripts collected elsewhere: their sampling settings are unknown "
                       "and may differ between models.")
    datas = []
    for battery in batteries:
        data = load_battery_data(battery, models, store, samples=spec.samples)
        prepare_white_box(data, models, store)  # likelihood batteries: scores need the models themselves
        n = data.n_complete
        if n < 30:
            caveats.append(f"Battery {battery.name}: only {n} prompts answered by every model; intervals are wide.")
        for label, k in data.excluded.items():
            caveats.append(f"Battery {battery.name}: {k} empty responses of {label} were left out.")
        datas.append(data)
        evid += evidence(data, candidate, references, controls, roles)
    sections = report_sections(datas, candidate, references, controls, confidence_level=spec.confidence_level,
                               n_resamples=spec.n_resamples, seed=spec.seed)
    results = sections["results"]
    caveats += sections["caveats"]
    battery_stats = battery_statistics(datas, candidate, references, controls, confidence_level=spec.confidence_level,
                                       n_resamples=spec.n_resamples, seed=spec.seed) if controls else []
    details = details_section(datas, candidate, references, controls)
    caveats += details_caveats(details)
    usage = usage_section(datas, store, {label: {m.key(b.generation.sampling) for b in batteries}
                                         for label, m in models.items()})
    if scores is not None:
        scores.extend(score_rows(datas, roles))
    return {
        "schema_version": "1",
        "kind": "audit",
        "tool": tool_info(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "audit": {"candidate": candidate, "references": references, "controls": controls,
                  "batteries": [b.name for b in batteries], "seed": spec.seed, "samples": spec.samples,
                  "spec_file": SPEC_FILE, "spec_sha256": stable_hash(spec.model_dump(mode="json"))},
        "models": [{"label": label, "role": roles[label], "model_string": strings[label], "provider": m.provider,
                    "identity": m.identity(), "identity_hash": stable_hash(m.identity())[:32]}
                   for label, m in models.items()],
        "batteries": [{"name": b.name, "version": b.version, "description": b.description, "scorer": b.scorer,
                       "content_hash": b.content_hash, "n_prompts": len(b.prompts),
                       "generation": {"samples": spec.samples or b.generation.samples,
                                      "temperature": b.generation.temperature, "top_p": b.generation.top_p,
                                      "max_new_tokens": b.generation.max_new_tokens}} for b in batteries],
        "statistics": sections["statistics"],
        "results": results,
        "combined": sections["combined"],
        "evidence": evid,
        "details": details,
        "usage": usage,
        "caveats": caveats,
        "collection": collection,
        "battery_statistics": battery_stats,
    }


def load_audit_dir(path: str | Path) -> AuditSpec:
    """The spec an audit directory was run with."""
    p = Path(path) / SPEC_FILE
    if not p.exists():
        raise SpecError(f"{path}: not an audit directory (no {SPEC_FILE}); give the --out folder of an audit")
    return make_spec(json.loads(p.read_text(encoding="utf-8")), where=str(p))
