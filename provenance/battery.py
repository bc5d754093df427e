"""Batteries: probe prompts as data, in the style of lm-evaluation-harness tasks.

A battery is a directory::

    probes/self_id/
      battery.yaml     name, version, description, scorer, generation {samples, temperature,
                       top_p, max_new_tokens}, prompts (file name, default prompts.jsonl)
      prompts.jsonl    one prompt a line: {"id", "text", "language", <tags>, <scorer fields>}
      README.md        what it measures, its confounds, how to extend it

In a prompts.jsonl record, keys the battery's scorer declares (``Scorer.meta_keys``, e.g. the
quirks ``normaliser``) go to ``Prompt.meta``; every other extra key is a string tag
(``form``, ``bucket``, ...) in ``Prompt.tags``. Explicit ``"tags": {...}`` and ``"meta": {...}``
objects are accepted too.

The content hash covers everything that can change a result (settings, prompt texts, tags,
scorer fields, and the scorer's data file such as the self-ID lexicon), so every report records
exactly which battery it ran. An audit may name a battery with a prompt filter,
``self_id[language=en]`` or ``ngram[area=coding|reasoning,language=en]``, to run only the
prompts whose language or tags match (the filter is part of the description and the hash). Bad input raises
:class:`BatteryError` with one line naming the file (and line) and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import provenance

from .errors import BatteryError, ProvenanceError
from .models.base import SamplingSettings, stable_hash

if TYPE_CHECKING:
    from .models.base import Model

BATTERY_FILE = "battery.yaml"
DEFAULT_PROMPTS_FILE = "prompts.jsonl"
PROBES_ENV = "PROVENANCE_PROBES"
_PROMPT_KEYS = {"id", "text", "language", "tags", "meta"}


class GenerationSettings(BaseModel):
    """How a battery's prompts are answered: samples per prompt and the sampling settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    samples: int = Field(1, ge=1, le=10000)
    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(64, ge=1, le=32768)

    @property
    def sampling(self) -> SamplingSettings:
        """The settings a backend needs (and a model's store key includes)."""
        return SamplingSettings(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens)


class Prompt(BaseModel):
    """One probe: a stable id, the text sent to the model, its language, tags and scorer data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^\S+$")
    text: str = Field(min_length=1)
    language: str = Field("en", min_length=2, max_length=35)
    tags: dict[str, str] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    def __hash__(self) -> int:  # tags/meta are dicts; id and text identify a prompt
        return hash((self.id, self.text, self.language))


class Battery(BaseModel):
    """A loaded battery. ``content_hash`` is computed from the content when not given, and
    checked against it when given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    version: str = Field(min_length=1, max_length=50)
    description: str = ""
    scorer: str = Field(min_length=1)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    prompts: tuple[Prompt, ...] = Field(min_length=1)
    path: str = ""
    content_hash: str = ""

    @model_validator(mode="after")
    def _hash_and_ids(self) -> "Battery":
        seen: set[str] = set()
        for p in self.prompts:
            if p.id in seen:
                raise ValueError(f"duplicate prompt id {p.id!r}")
            seen.add(p.id)
        expected = battery_hash(self)
        if not self.content_hash:
            object.__setattr__(self, "content_hash", expected)
        elif self.content_hash != expected:
            raise ValueError(f"content_hash {self.content_hash[:12]}... does not match the content ({expected[:12]}...)")
        return self

    def prompt_hash(self, prompt: Prompt | str) -> str:
        """Store key of a prompt's answers: a hash of its id and text (what the model was
        asked). Tags and scorer fields are left out, so re-tagging or re-scoring a battery
        keeps its stored answers; editing a prompt's text asks the models again."""
        if isinstance(prompt, str):
            prompt = self.get(prompt)
        return stable_hash({"id": prompt.id, "text": prompt.text})

    def get(self, prompt_id: str) -> Prompt:
        """The prompt with this id (KeyError naming the battery otherwise)."""
        for p in self.prompts:
            if p.id == prompt_id:
                return p
        raise KeyError(f"battery {self.name} has no prompt {prompt_id!r}")


def battery_hash(b: Battery) -> str:
    """sha256 of the canonical battery content: header settings and every prompt."""
    header = {"name": b.name, "version": b.version, "description": b.description, "scorer": b.scorer,
              "generation": b.generation.model_dump()}
    data = _scorer_data_hash(b.scorer)
    if data:
        header["scorer_data_sha256"] = data
    prompts = [p.model_dump() for p in b.prompts]
    return hashlib.sha256(json.dumps({"battery": header, "prompts": prompts}, sort_keys=True,
                                     ensure_ascii=False, separators=(",", ":")).encode("utf-8")).hexdigest()


def _scorer_data_hash(scorer: str) -> str | None:
    from .scorers import SCORERS, get_scorer

    if scorer not in SCORERS:
        return None
    try:
        return get_scorer(scorer).data_hash()
    except ProvenanceError:
        return None


# --- locating batteries ---------------------------------------------------------------------

def probes_dir() -> Path:
    """Where bare battery names are looked up: $PROVENANCE_PROBES, else the repo's probes/."""
    env = os.environ.get(PROBES_ENV)
    return Path(env) if env else Path(provenance.__file__).resolve().parents[1] / "probes"


def _known_names() -> list[str]:
    root = probes_dir()
    return sorted(d.name for d in root.iterdir() if (d / BATTERY_FILE).is_file()) if root.is_dir() else []


def _resolve_dir(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.is_file() and p.name == BATTERY_FILE:
        return p.parent
    if p.is_dir():
        return p
    s = str(name_or_path)
    if os.sep in s or "/" in s or s.startswith("."):
        raise BatteryError(f"{s}: battery directory not found; give a directory holding {BATTERY_FILE}")
    known = _known_names()
    where = probes_dir()
    candidate = where / s
    if candidate.is_dir():
        return candidate
    raise BatteryError(f"battery {s!r} not found in {where}; known batteries: {', '.join(known) or 'none'} "
                       f"(or give the path of a battery directory)")


# --- reading --------------------------------------------------------------------------------

def _pydantic_problem(e: ValidationError) -> str:
    """pydantic's errors as one line naming each field."""
    parts = []
    for err in e.errors():
        field = ".".join(str(x) for x in err["loc"]) or "value"
        if err["type"] == "extra_forbidden":
            parts.append(f"field '{field}' is not a known field")
        elif err["type"] == "missing":
            parts.append(f"field '{field}' is required")
        else:
            msg = err["msg"][:1].lower() + err["msg"][1:]
            got = repr(err.get("input"))
            parts.append(f"field '{field}': {msg}" + (f" (got {got})" if len(got) <= 40 else ""))
    return "; ".join(parts)


def _read_header(d: Path) -> tuple[dict | None, list[str]]:
    f = d / BATTERY_FILE
    if not d.is_dir():
        return None, [f"{d}: battery directory not found; give a directory holding {BATTERY_FILE}"]
    if not f.is_file():
        return None, [f"{f}: not found; a battery directory needs {BATTERY_FILE} (copy one from probes/self_id/)"]
    try:
        data = yaml.safe_load(f.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid syntax"
        return None, [f"{f}{where}: YAML syntax error ({problem}); fix the syntax"]
    except UnicodeDecodeError:
        return None, [f"{f}: not UTF-8 text; save it as UTF-8"]
    if not isinstance(data, dict):
        return None, [f"{f}: must be a mapping with name, version, description, scorer, generation, prompts"]
    allowed = {"name", "version", "description", "scorer", "generation", "prompts"}
    extra = sorted(set(data) - allowed)
    if extra:
        return None, [f"{f}: field '{extra[0]}' is not a known field (known: {', '.join(sorted(allowed))}); "
                      f"remove or rename it"]
    if "version" in data and isinstance(data["version"], (int, float)):
        return None, [f"{f}: field 'version' must be a string; quote it, e.g. version: \"{data['version']}\""]
    return data, []


def _read_prompts(f: Path, meta_keys: frozenset[str]) -> tuple[list[Prompt], list[str], dict[str, int]]:
    """The prompts of a JSONL file, its problems, and the line number of each prompt id."""
    if not f.is_file():
        return [], [f"{f}: prompts file not found; create it (one JSON object per line) or set 'prompts' "
                    f"in {BATTERY_FILE}"], {}
    prompts, problems, first_line = [], [], {}
    try:
        lines = f.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return [], [f"{f}: not UTF-8 text; save it as UTF-8"], {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{f}:{lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{where}: not valid JSON ({e.msg}); each line must be one JSON object "
                            f'like {{"id": "x-001", "text": "..."}}')
            continue
        if not isinstance(rec, dict):
            problems.append(f"{where}: must be a JSON object, not {type(rec).__name__}")
            continue
        fields: dict[str, Any] = {k: rec[k] for k in _PROMPT_KEYS if k in rec}
        tags, meta = rec.get("tags", {}), rec.get("meta", {})
        if not isinstance(tags, dict) or not isinstance(meta, dict):
            problems.append(f"{where}: fields 'tags' and 'meta' must be JSON objects")
            continue
        tags, meta = dict(tags), dict(meta)
        extra = [k for k in rec if k not in _PROMPT_KEYS]
        bad = [k for k in extra if k not in meta_keys and not isinstance(rec[k], str)]
        if bad:
            problems.append(f"{where}: field '{bad[0]}' must be a string tag (or one of this scorer's fields: "
                            f"{', '.join(sorted(meta_keys)) or 'none'}); put other data under \"meta\"")
            continue
        for k in extra:
            (meta if k in meta_keys else tags)[k] = rec[k]
        fields["tags"], fields["meta"] = tags, meta
        try:
            p = Prompt(**fields)
        except ValidationError as e:
            problems.append(f"{where}: {_pydantic_problem(e)}; fix the record")
            continue
        if p.id in first_line:
            problems.append(f"{where}: duplicate prompt id {p.id!r} (first on line {first_line[p.id]}); "
                            f"give each prompt its own id")
            continue
        first_line[p.id] = lineno
        prompts.append(p)
    if not prompts and not problems:
        problems.append(f"{f}: holds no prompts; add one JSON object per line")
    return prompts, problems, first_line


def _load(d: Path) -> tuple[Battery | None, list[str]]:
    """The battery in directory ``d`` and every problem found (the battery is None if there
    is any); stops early only where nothing further can be read."""
    from .scorers import SCORERS, get_scorer

    data, problems = _read_header(d)
    if data is None:
        return None, problems
    f = d / BATTERY_FILE
    scorer_name = data.get("scorer")
    if not (isinstance(scorer_name, str) and scorer_name in SCORERS):
        # without its scorer, a prompt's extra fields cannot be told apart: stop here
        what = "field 'scorer' is required" if scorer_name is None else f"unknown scorer {scorer_name!r}"
        return None, [f"{f}: {what}; use one of {', '.join(sorted(SCORERS))}"]
    scorer = get_scorer(scorer_name)
    if data_problem := scorer.check_data():
        return None, [f"{f}: scorer {scorer_name!r} cannot read its data: {data_problem}"]
    prompts_name = data.get("prompts", DEFAULT_PROMPTS_FILE)
    header_problems: list[str] = []
    if not isinstance(prompts_name, str) or not prompts_name or Path(prompts_name).is_absolute() \
            or ".." in Path(prompts_name).parts:
        header_problems.append(f"{f}: field 'prompts' must name a file inside the battery directory, "
                        f"e.g. prompts: {DEFAULT_PROMPTS_FILE}")
        prompts, lines = [], {}
    else:
        prompts, p_problems, lines = _read_prompts(d / prompts_name, scorer.meta_keys)
        problems += p_problems
    for p in prompts:
        if issue := scorer.check_prompt(p):
            problems.append(f"{d / prompts_name}:{lines.get(p.id, '?')}: {issue}")
    header = {k: v for k, v in data.items() if k != "prompts"}
    battery = None
    try:
        # with no usable prompt (already reported), a placeholder still lets the header be checked
        battery = Battery(**header, prompts=tuple(prompts) or (_PLACEHOLDER,), path=str(d.resolve()))
    except ValidationError as e:
        header_problems.append(f"{f}: {_pydantic_problem(e)}; fix {BATTERY_FILE}")
    problems = header_problems + problems  # the header's problems first: they matter most
    return (battery if not problems else None), problems


_PLACEHOLDER = Prompt(id="placeholder", text="placeholder")


def load_battery(name_or_path: str | os.PathLike) -> Battery:
    """The battery at a directory path, or the one called ``name`` under :func:`probes_dir`.
    Raises BatteryError with the first problem."""
    battery, problems = _load(_resolve_dir(name_or_path))
    if problems:
        raise BatteryError(problems[0])
    assert battery is not None
    return battery


def validate_battery_dir(path: str | os.PathLike) -> list[str]:
    """Every problem with the battery directory at ``path`` (empty when it is valid)."""
    try:
        return _load(Path(path))[1]
    except ProvenanceError as e:
        return [str(e)]


def list_batteries() -> list[Battery]:
    """Every battery under :func:`probes_dir`, by name."""
    return [load_battery(probes_dir() / n) for n in _known_names()]


# --- batteries named in an audit ------------------------------------------------------------

TRANSCRIPTS_PREFIX = "transcripts:"


def transcripts_battery(scorer: str, models: dict[str, "Model"]) -> Battery:
    """A battery of the prompts every transcripts model in ``models`` answered, scored by
    ``scorer``: how published benchmark outputs of real models are compared."""
    from .scorers import SCORERS, get_scorer

    if scorer not in SCORERS:
        raise BatteryError(f"{TRANSCRIPTS_PREFIX}{scorer}: unknown scorer {scorer!r}; use one of "
                           f"{', '.join(sorted(SCORERS))}")
    sources = {label: m for label, m in models.items() if hasattr(m, "prompts") and not m.generates}
    if not sources:
        raise BatteryError(f"{TRANSCRIPTS_PREFIX}{scorer}: no transcripts/ model in this audit; add one or use "
                           f"a battery name")
    tables = {label: m.prompts() for label, m in sources.items()}
    shared = set.intersection(*(set(t) for t in tables.values()))
    if not shared:
        raise BatteryError(f"{TRANSCRIPTS_PREFIX}{scorer}: the transcripts share no prompt ids "
                           f"({', '.join(sources)}); check that they come from the same benchmark")
    first = next(iter(tables.values()))
    samples = max(len(m.records.get(pid, [])) for m in sources.values() for pid in shared) \
        if all(hasattr(m, "records") for m in sources.values()) else 1
    try:
        prompts = tuple(Prompt(id=pid, text=first[pid] or pid) for pid in sorted(shared))
    except ValidationError as e:
        raise BatteryError(f"{TRANSCRIPTS_PREFIX}{scorer}: a transcript prompt is unusable ({_pydantic_problem(e)})") \
            from None
    sc = get_scorer(scorer)
    if getattr(sc, "needs_models", False):
        raise BatteryError(f"{TRANSCRIPTS_PREFIX}{scorer}: this scorer needs local model weights (white-box), "
                           f"which transcripts do not have; use it with hf/ models")
    for p in prompts:
        if issue := sc.check_prompt(p):
            raise BatteryError(f"{TRANSCRIPTS_PREFIX}{scorer}: {issue}; this scorer needs its own battery, "
                               f"not transcripts")
    return Battery(name=f"{TRANSCRIPTS_PREFIX}{scorer}", version=provenance.__version__,
                   description=f"prompts shared by the transcripts of {', '.join(sources)}, scored by {scorer}",
                   scorer=scorer, generation=GenerationSettings(samples=max(1, samples)), prompts=prompts,
                   path="")


_FILTER = re.compile(r"^(?P<base>.+?)\[(?P<filter>[^\[\]]*)\]$")


def parse_filter(text: str) -> dict[str, set[str]]:
    """``"language=en,area=coding|reasoning"`` -> {"language": {"en"}, "area": {"coding", "reasoning"}}."""
    out: dict[str, set[str]] = {}
    for part in text.split(","):
        key, eq, values = part.partition("=")
        key = key.strip()
        vals = {v.strip() for v in values.split("|") if v.strip()}
        if not eq or not key or not vals:
            raise BatteryError(f"prompt filter {text!r}: write key=value pairs separated by commas, values "
                               f"separated by |, e.g. self_id[language=en] or ngram[area=coding|reasoning]")
        out.setdefault(key, set()).update(vals)
    return out


def filter_battery(battery: Battery, filters: dict[str, set[str]]) -> Battery:
    """The battery with only the prompts whose ``language`` (or tag) is one of the given values
    for every key; the filter is written into the description (and so into the hash)."""
    def value(p: Prompt, key: str) -> str | None:
        return p.language if key == "language" else (p.id if key == "id" else p.tags.get(key))

    kept = tuple(p for p in battery.prompts if all(value(p, k) in vs for k, vs in filters.items()))
    spec = ",".join(f"{k}={'|'.join(sorted(v))}" for k, v in sorted(filters.items()))
    if not kept:
        raise BatteryError(f"battery {battery.name}[{spec}]: no prompt matches the filter; check the tag names "
                           f"and values with `provenance batteries show {battery.name}`")
    return Battery(name=battery.name, version=battery.version,
                   description=f"{battery.description} [prompts with {spec}: {len(kept)} of {len(battery.prompts)}]",
                   scorer=battery.scorer, generation=battery.generation, prompts=kept, path=battery.path)


def resolve_batteries(names: list[str], models: dict[str, "Model"] | None = None) -> list[Battery]:
    """The batteries of an audit: names or directories, ``transcripts:<scorer>``, each
    optionally with a prompt filter in brackets (``self_id[language=en]``)."""
    out = []
    for n in names:
        m = _FILTER.match(str(n))
        base, filters = (m.group("base"), parse_filter(m.group("filter"))) if m else (str(n), None)
        if base.startswith(TRANSCRIPTS_PREFIX):
            b = transcripts_battery(base[len(TRANSCRIPTS_PREFIX):], models or {})
        else:
            b = load_battery(base)
        out.append(filter_battery(b, filters) if filters else b)
    seen: set[str] = set()
    for b in out:
        if b.name in seen:
            raise BatteryError(f"battery {b.name!r} is named twice in this audit; name each battery once")
        seen.add(b.name)
    return out
