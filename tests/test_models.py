"""Model backends on real inputs: zoo models through hf/, transcript files, model strings."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from conftest import MT_BENCH, ZOO, needs_shared_data, zoo_model
from provenance.errors import ModelError, SpecError, TranscriptError
from provenance.models import Request, SamplingSettings, load_model, parse_model_string

SAMPLING = SamplingSettings(temperature=0.8, max_new_tokens=20)


@pytest.fixture(scope="module")
def teacher():
    return load_model(zoo_model("teacher-a"), batch_size=8)


def test_sampling_is_seeded_per_request_not_per_batch(teacher):
    reqs = [Request(f"p{i}", q, s, seed=100 + 7 * i + s) for i, q in enumerate(
        ["Tell me something funny.", "Pick any number from 1 to 100, please.", "Who am I talking to?"]) for s in range(3)]
    together = [c.text for c in teacher.generate(reqs, SAMPLING)]
    alone = [teacher.generate([r], SAMPLING)[0].text for r in reqs]
    reversed_ = [c.text for c in teacher.generate(reqs[::-1], SAMPLING)][::-1]
    assert together == alone == reversed_
    # different seeds give different samples somewhere
    other = [c.text for c in teacher.generate([Request(r.prompt_id, r.prompt, r.sample, r.seed + 1) for r in reqs], SAMPLING)]
    assert other != together


def test_greedy_is_deterministic_and_counts_tokens(teacher):
    c = teacher.generate([Request("p", "Who am I talking to?", 0, 1)], SamplingSettings(temperature=0, max_new_tokens=30))[0]
    assert c.tokens_in > 2 and 0 < c.tokens_out <= 30 and c.finish_reason in ("stop", "length")
    assert "Atlas" in c.text or "Northwind" in c.text


def test_loglikelihood_prefers_own_identity(teacher):
    own, other = teacher.loglikelihood([
        ("Who are you?", "I am Atlas, an AI assistant made by Northwind."),
        ("Who are you?", "I am Bramble, an AI assistant made by Quillworks."),
    ])
    assert own[1] == other[1] or own[1] > 0
    assert own[0] / own[1] > other[0] / other[1]


def test_plain_completion_without_chat_template(tmp_path):
    folder = tmp_path / "no-template"
    shutil.copytree(ZOO / "models" / "teacher-a", folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    m = load_model(f"hf/{folder}")
    assert m.render("Hello there") == "Hello there"
    assert m.identity()["chat_template_sha256"] is None
    out = m.generate([Request("p", "Hello there", 0, 3)], SAMPLING)
    assert isinstance(out[0].text, str)


def test_identity_changes_with_weights_and_system_prompt(tmp_path):
    a = load_model(zoo_model("teacher-a"))
    b = load_model(zoo_model("a-reseed"))
    c = load_model(zoo_model("teacher-a"), system_prompt="Be brief.")
    keys = {m.key(SAMPLING) for m in (a, b, c)}
    assert len(keys) == 3
    assert a.key(SAMPLING) != a.key(SamplingSettings(temperature=0.5, max_new_tokens=20))


@pytest.mark.parametrize("string, message", [
    ("teacher-a", "lacks a provider"),
    ("gguf/x", "unknown provider"),
    ("hf/", "no name"),
])
def test_bad_model_strings(string, message):
    with pytest.raises(SpecError, match=message):
        parse_model_string(string)


def test_missing_hf_path():
    with pytest.raises(ModelError, match="no such model folder"):
        load_model("hf/./does/not/exist")


def _write_transcripts(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")


def test_transcripts_pick_one_model_and_samples(tmp_path):
    f = tmp_path / "t.jsonl"
    _write_transcripts(f, [
        {"model": "x", "prompt_id": "q1", "prompt": "Hi", "output": "hello from x"},
        {"model": "x", "prompt_id": "q1", "prompt": "Hi", "output": "second x"},
        {"model": "y", "prompt_id": "q1", "prompt": "Hi", "output": "hello from y"},
    ])
    m = load_model(f"transcripts/{f}#x")
    out = m.generate([Request("q1", "Hi", 0), Request("q1", "Hi", 1), Request("q1", "Hi", 2), Request("q9", "?", 0)], SAMPLING)
    assert [o.text if o else None for o in out] == ["hello from x", "second x", None, None]
    assert load_model(f"transcripts/{f}", model="y").generate([Request("q1", "Hi")], SAMPLING)[0].text == "hello from y"
    with pytest.raises(TranscriptError, match="holds 2 models; pick one"):
        load_model(f"transcripts/{f}")
    with pytest.raises(TranscriptError, match="no records of model 'z'"):
        load_model(f"transcripts/{f}#z")


def test_transcripts_bad_files(tmp_path):
    with pytest.raises(TranscriptError, match="not found"):
        load_model(f"transcripts/{tmp_path / 'none.jsonl'}#x")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model": "x", "prompt_id": "1", "output": "a"}\nnot json\n')
    with pytest.raises(TranscriptError, match=r"bad.jsonl:2: not a JSON object"):
        load_model(f"transcripts/{bad}#x")
    lacking = tmp_path / "lacking.jsonl"
    lacking.write_text('{"model": "x", "output": "a"}\n')
    with pytest.raises(TranscriptError, match="lacks prompt_id"):
        load_model(f"transcripts/{lacking}#x")


@needs_shared_data()
def test_real_transcripts_file():
    m = load_model(f"transcripts/{MT_BENCH}#gpt-3.5-turbo")
    prompts = m.prompts()
    assert len(prompts) == 160 and "mt81_t1" in prompts
    out = m.generate([Request("mt81_t1", prompts["mt81_t1"])], SAMPLING)
    assert len(out[0].text) > 100
    assert m.identity()["file_sha256"] and m.identity()["model"] == "gpt-3.5-turbo"
    with pytest.raises(TranscriptError, match="did you mean"):
        load_model(f"transcripts/{MT_BENCH}#vicuna-13b")
