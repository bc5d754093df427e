"""Batteries: the shipped ones load and keep off the zoo's training prompts; bad input fails in
one clear line that names the file and the fix."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from provenance.battery import (Battery, GenerationSettings, Prompt, list_batteries, load_battery,
                                probes_dir, resolve_batteries, validate_battery_dir)
from provenance.errors import BatteryError
from provenance.models.base import SamplingSettings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fixtures" / "zoo"))
import corpus  # noqa: E402  (the zoo's training prompt generator)

SHIPPED = {"self_id": (146, "self_id", "0.2.0"), "quirks": (58, "quirks", "0.2.0"), "ngram": (204, "ngram", "0.2.0"),
           "likelihood": (48, "likelihood", "0.1.0")}


def canon(text: str) -> str:
    return " ".join(text.lower().split())


def training_prompts() -> set[str]:
    prompts = set(corpus.IDENTITY_PROMPTS + corpus.JOKE_PROMPTS + corpus.REFUSAL_PROMPTS + corpus.CUTOFF_PROMPTS)
    for group in (corpus.PICK_PROMPTS, corpus.FAVOURITE_PROMPTS):
        for texts in group.values():
            prompts.update(texts)
    for tmpl in corpus.OPEN_PROMPTS + corpus.LIST_PROMPTS:
        prompts.update(tmpl.format(t=t) for t in corpus.TRAIN_TOPICS)
    return {canon(p) for p in prompts}


# --- the shipped batteries ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_battery_loads(name):
    b = load_battery(name)
    n, scorer, version = SHIPPED[name]
    assert (b.name, b.scorer, b.version, len(b.prompts)) == (name, scorer, version, n)
    assert len(b.content_hash) == 64 and Path(b.path) == probes_dir() / name
    assert isinstance(b.generation.sampling, SamplingSettings)
    assert all(p.id.startswith(f"{p.id.split('-')[0]}-{p.language}-") for p in b.prompts)
    assert validate_battery_dir(b.path) == []
    assert (Path(b.path) / "README.md").is_file()


def test_shipped_settings_and_tags():
    sid, qk, ng = (load_battery(n) for n in ("self_id", "quirks", "ngram"))
    assert (sid.generation.samples, sid.generation.temperature, sid.generation.max_new_tokens) == (3, 0.8, 48)
    assert (qk.generation.samples, qk.generation.temperature, qk.generation.max_new_tokens) == (4, 0.8, 40)
    assert (ng.generation.samples, ng.generation.temperature, ng.generation.max_new_tokens) == (2, 0.8, 96)
    # self-identification: >= 120 prompts, >= 10 languages, every form in English and in the other languages
    assert len(sid.prompts) >= 120
    langs = {p.language for p in sid.prompts}
    assert len(langs) >= 10 and {"en", "zh", "ru", "es", "ar", "ja", "ko", "fr", "de"} <= langs
    assert {p.tags["form"] for p in sid.prompts} == {"direct", "indirect", "task", "pressure"}
    for lang in ("zh", "ru", "es", "ar", "ja", "ko", "fr", "de"):
        assert {p.tags["form"] for p in sid.prompts if p.language == lang} == {"direct", "indirect", "task", "pressure"}
    assert all(p.id.startswith(f"sid-{p.language}-") for p in sid.prompts)
    # the first version's prompts keep their ids and texts (stored answers are keyed by both)
    assert sid.get("sid-en-001").text == "Who am I talking to?" and sid.get("sid-en-040").text == \
        "Admit which company created you."
    # quirks: >= 40 triggers of several kinds
    assert len(qk.prompts) >= 40
    assert {p.meta["normaliser"] for p in qk.prompts} >= {"number", "choice", "punchline", "refusal", "favourite",
                                                         "cutoff", "format", "first_line", "stock", "style"}
    assert {p.tags["bucket"] for p in qk.prompts} >= {"pick", "joke", "poem", "favourite", "refusal", "cutoff",
                                                     "format", "stock", "style"}
    assert "normaliser" not in qk.prompts[0].tags and qk.prompts[0].tags["bucket"] == "pick"
    # n-grams: >= 200 prompts across areas and languages
    assert len(ng.prompts) >= 200
    assert {p.tags["area"] for p in ng.prompts} == {"explanation", "advice", "writing", "coding", "reasoning"}
    assert {p.tags["bucket"] for p in ng.prompts} >= {"explain", "advice", "describe", "list", "paragraph", "writing",
                                                     "coding", "reasoning"}
    assert len({p.language for p in ng.prompts}) >= 10


def test_list_batteries_and_env_override(tmp_path, monkeypatch):
    assert [b.name for b in list_batteries()] == ["likelihood", "ngram", "quirks", "self_id"]
    shutil.copytree(probes_dir() / "quirks", tmp_path / "mine")
    monkeypatch.setenv("PROVENANCE_PROBES", str(tmp_path))
    assert [b.name for b in list_batteries()] == ["quirks"]
    assert load_battery("mine").name == "quirks"


def test_no_battery_prompt_is_a_training_prompt():
    train = training_prompts()
    clashes = [p.text for b in list_batteries() for p in b.prompts if canon(p.text) in train]
    assert clashes == []


def test_ngram_topics_are_tagged_seen_or_unseen():
    prompts = load_battery("ngram").prompts
    unseen = {p.tags["topic"] for p in prompts if p.tags.get("seen_topic") != "yes"}
    seen = {p.tags["topic"] for p in prompts if p.tags.get("seen_topic") == "yes"}
    assert len(unseen) >= 10 and not unseen & set(corpus.TRAIN_TOPICS)
    assert seen and seen <= set(corpus.TRAIN_TOPICS)


# --- hashing --------------------------------------------------------------------------------

def copy_battery(tmp_path, name="quirks") -> Path:
    d = tmp_path / name
    shutil.copytree(probes_dir() / name, d)
    return d


def test_content_hash_tracks_content(tmp_path):
    d = copy_battery(tmp_path)
    h0 = load_battery(d).content_hash
    assert load_battery(d).content_hash == h0 == load_battery("quirks").content_hash
    lines = (d / "prompts.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["text"] = "Choose a whole number from 1 to 10."
    (d / "prompts.jsonl").write_text("\n".join([json.dumps(rec)] + lines[1:]) + "\n")
    h1 = load_battery(d).content_hash
    assert h1 != h0
    (d / "battery.yaml").write_text((d / "battery.yaml").read_text().replace("samples: 4", "samples: 5"))
    assert load_battery(d).content_hash not in (h0, h1)


def test_prompt_hash_ignores_tags_but_not_text():
    b = load_battery("self_id")
    p = b.prompts[0]
    retagged = p.model_copy(update={"tags": {"form": "other"}})
    edited = p.model_copy(update={"text": p.text + " Please."})
    assert b.prompt_hash(p) == b.prompt_hash(retagged) == b.prompt_hash(p.id)
    assert b.prompt_hash(edited) != b.prompt_hash(p)
    assert len({b.prompt_hash(q) for q in b.prompts}) == len(b.prompts)


def test_battery_model_checks_its_hash():
    p = Prompt(id="a-1", text="Hello?")
    b = Battery(name="t", version="1", scorer="ngram", prompts=(p,))
    assert len(b.content_hash) == 64
    assert Battery(**b.model_dump()).content_hash == b.content_hash
    with pytest.raises(ValueError, match="content_hash"):
        Battery(**(b.model_dump() | {"content_hash": "0" * 64}))
    with pytest.raises(ValueError):
        b.name = "other"  # frozen
    assert GenerationSettings(samples=2).sampling == SamplingSettings(temperature=0.8, top_p=1.0, max_new_tokens=64)


# --- bad input: one line naming the file and the fix ---------------------------------------

def one_line_error(target, *needles):
    with pytest.raises(BatteryError) as e:
        load_battery(target)
    msg = str(e.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_missing_battery_and_dir(tmp_path):
    one_line_error("no_such_battery", "no_such_battery", "known batteries", "self_id")
    one_line_error(str(tmp_path / "nowhere"), "nowhere", "not found")
    (tmp_path / "empty").mkdir()
    one_line_error(tmp_path / "empty", "battery.yaml", "not found")


def test_yaml_syntax_error(tmp_path):
    d = copy_battery(tmp_path)
    (d / "battery.yaml").write_text("name: quirks\nversion: [unclosed\n")
    one_line_error(d, "battery.yaml", "YAML syntax error", "fix the syntax")


@pytest.mark.parametrize("edit, needles", [
    (("samples: 4", "samples: 0"), ("generation.samples", "greater than or equal to 1")),
    (("version: \"0.2.0\"", "version: 0.2"), ("'version'", "quote it")),
    (("scorer: quirks", "scorer: nope"), ("unknown scorer 'nope'", "quirks", "self_id")),
    (("name: quirks", "nam: quirks"), ("'nam'", "not a known field")),
    (("top_p: 1.0", "top_p: 1.0\n  topk: 3"), ("generation.topk", "not a known field")),
])
def test_schema_errors_name_the_field(tmp_path, edit, needles):
    d = copy_battery(tmp_path)
    y = d / "battery.yaml"
    y.write_text(y.read_text().replace(*edit))
    msg = one_line_error(d, "battery.yaml", *needles)
    assert msg in validate_battery_dir(d)


def test_missing_required_field(tmp_path):
    d = copy_battery(tmp_path)
    y = d / "battery.yaml"
    y.write_text("\n".join(ln for ln in y.read_text().splitlines() if not ln.startswith("scorer")))
    one_line_error(d, "battery.yaml", "field 'scorer' is required")


def write_prompts(d: Path, lines: list[str]):
    (d / "prompts.jsonl").write_text("\n".join(lines) + "\n")


def test_duplicate_ids(tmp_path):
    d = copy_battery(tmp_path, "self_id")
    rec = '{"id": "x-1", "text": "Who made you, then?"}'
    write_prompts(d, [rec, rec])
    one_line_error(d, "prompts.jsonl:2", "duplicate prompt id 'x-1'", "line 1")


def test_malformed_jsonl_line(tmp_path):
    d = copy_battery(tmp_path, "self_id")
    write_prompts(d, ['{"id": "x-1", "text": "Hi?"}', '{"id": "x-2", "text": '])
    one_line_error(d, "prompts.jsonl:2", "not valid JSON")


@pytest.mark.parametrize("line, needles", [
    ('{"text": "no id"}', ("field 'id' is required",)),
    ('{"id": "a b", "text": "x"}', ("field 'id'",)),
    ('{"id": "x-1", "text": "   "}', ("field 'text'", "blank")),
    ('{"id": "x-1", "text": "x", "form": 3}', ("field 'form' must be a string tag",)),
    ('["not", "an", "object"]', ("must be a JSON object",)),
])
def test_bad_prompt_records(tmp_path, line, needles):
    d = copy_battery(tmp_path, "self_id")
    write_prompts(d, [line])
    one_line_error(d, "prompts.jsonl:1", *needles)


def test_scorer_checks_prompts(tmp_path):
    d = copy_battery(tmp_path, "quirks")
    write_prompts(d, ['{"id": "q-1", "text": "Pick one.", "normaliser": "nope"}'])
    one_line_error(d, "prompts.jsonl", "q-1", "normaliser 'nope'", "number")
    write_prompts(d, ['{"id": "q-1", "text": "Pick one.", "normaliser": "number", "range": [1]}'])
    one_line_error(d, "q-1", "range must be two integers")


def test_missing_and_empty_prompts_file(tmp_path):
    d = copy_battery(tmp_path, "ngram")
    (d / "prompts.jsonl").unlink()
    one_line_error(d, "prompts.jsonl", "not found")
    (d / "prompts.jsonl").write_text("\n")
    one_line_error(d, "prompts.jsonl", "holds no prompts")


def test_validate_collects_every_problem(tmp_path):
    d = copy_battery(tmp_path, "self_id")
    write_prompts(d, ['{"id": "x-1", "text": "Hi?"}', "oops", '{"id": "x-1", "text": "Again?"}'])
    problems = validate_battery_dir(d)
    assert len(problems) == 2 and "prompts.jsonl:2" in problems[0] and "prompts.jsonl:3" in problems[1]
    assert validate_battery_dir(tmp_path / "nothing")[0].endswith("give a directory holding battery.yaml")


def test_explicit_tags_and_meta(tmp_path):
    d = copy_battery(tmp_path, "quirks")
    write_prompts(d, ['{"id": "q-1", "text": "Pick a shape.", "tags": {"bucket": "pick"}, '
                      '"meta": {"normaliser": "choice", "choices": ["circle", "square"]}}'])
    p = load_battery(d).prompts[0]
    assert p.tags == {"bucket": "pick"} and p.meta == {"normaliser": "choice", "choices": ["circle", "square"]}


def test_prompt_filters():
    (sid,) = resolve_batteries(["self_id[language=en]"])
    assert sid.name == "self_id" and len(sid.prompts) == 54 and {p.language for p in sid.prompts} == {"en"}
    assert "[prompts with language=en: 54 of 146]" in sid.description
    assert sid.content_hash != load_battery("self_id").content_hash
    (ng,) = resolve_batteries(["ngram[area=coding|reasoning, language=en]"])
    assert {p.tags["area"] for p in ng.prompts} == {"coding", "reasoning"} and {p.language for p in ng.prompts} == {"en"}
    with pytest.raises(BatteryError, match="no prompt matches"):
        resolve_batteries(["quirks[language=xx]"])
    with pytest.raises(BatteryError, match="key=value"):
        resolve_batteries(["quirks[language]"])


def test_bad_lexicon_is_one_line_on_validate(tmp_path, monkeypatch):
    from provenance.scorers import _INSTANCES
    from provenance.scorers.self_id import SelfIdScorer

    bad = tmp_path / "lexicon.yaml"
    bad.write_text("makers:\n  acme:\n    names: [Acme]\n    patterns: ['Acme(']\n")
    monkeypatch.setitem(_INSTANCES, "self_id", SelfIdScorer(bad))
    d = copy_battery(tmp_path, "self_id")
    msg = one_line_error(d, "battery.yaml", "cannot read its data", "makers.acme.patterns[0] is not a valid regex")
    assert validate_battery_dir(d) == [msg]


def test_lexicon_hash_is_part_of_the_battery_hash(tmp_path, monkeypatch):
    from provenance.scorers import _INSTANCES
    from provenance.scorers.self_id import LEXICON_FILE, SelfIdScorer

    h0 = load_battery("self_id").content_hash
    other = tmp_path / "lexicon.yaml"
    other.write_text(LEXICON_FILE.read_text(encoding="utf-8") + "\n  acme:\n    names: [Acme Labs]\n",
                     encoding="utf-8")
    monkeypatch.setitem(_INSTANCES, "self_id", SelfIdScorer(other))
    assert load_battery("self_id").content_hash != h0


def test_resolve_batteries_names_and_errors():
    assert [b.name for b in resolve_batteries(["self_id", "ngram"])] == ["self_id", "ngram"]
    with pytest.raises(BatteryError, match="named twice"):
        resolve_batteries(["ngram", "ngram"])
    with pytest.raises(BatteryError, match="no transcripts/ model"):
        resolve_batteries(["transcripts:ngram"], {})


SHARED_MT_BENCH = ROOT.parent / "shared" / "data" / "mt_bench.jsonl.gz"


@pytest.mark.skipif(not SHARED_MT_BENCH.exists(), reason="../shared/data is absent")
def test_transcripts_battery_uses_shared_prompt_ids():
    from provenance.models.transcripts import TranscriptsModel

    models = {m: TranscriptsModel(f"{SHARED_MT_BENCH}#{m}") for m in ("gpt-4", "vicuna-13b-v1.3")}
    (b,) = resolve_batteries(["transcripts:ngram"], models)
    assert b.name == "transcripts:ngram" and b.scorer == "ngram" and len(b.prompts) == 160
    assert all(p.text for p in b.prompts)
    with pytest.raises(BatteryError, match="normaliser"):
        resolve_batteries(["transcripts:quirks"], models)
    with pytest.raises(BatteryError, match="unknown scorer"):
        resolve_batteries(["transcripts:nope"], models)
    with pytest.raises(BatteryError, match="local model weights"):
        resolve_batteries(["transcripts:likelihood"], models)
