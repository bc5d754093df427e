"""The lineage zoo: committed models that load through the real code, with a manifest that
matches the build script, and clear errors on bad build input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import ZOO, zoo_model
from provenance.errors import ModelError
from provenance.models import Request, SamplingSettings, load_model

sys.path.insert(0, str(ZOO))
import build  # noqa: E402
import corpus  # noqa: E402

LINEAGE = {
    "seqkd-a": ("seqkd", ["teacher-a"]), "kd-a": ("logit-kd", ["teacher-a"]), "seqkd-b": ("seqkd", ["teacher-b"]),
    "scrubbed-a": ("scrubbed", ["teacher-a"]), "a-reseed": ("reseed", []), "control-1": ("independent", []),
    "dose-050": ("mix", ["teacher-a"]), "dose-000": ("mix", []),
}


def test_manifest_matches_build_settings(manifest):
    assert manifest["settings_hash"] == build.settings_hash(manifest["seed"])
    assert manifest["settings"] == json.loads(json.dumps(build.SETTINGS))
    for name, entry in manifest["models"].items():
        assert entry["weights_sha256"] == build.sha256_file(ZOO / "models" / name / "model.safetensors"), name
    assert manifest["tokenizer_sha256"] == build.sha256_file(ZOO / "tokenizer" / "tokenizer.json")


def test_manifest_lineage(manifest):
    models = manifest["models"]
    for name, (relation, parents) in LINEAGE.items():
        assert models[name]["relation"] == relation
        assert models[name]["parents"] == parents
    fractions = [models[f"dose-{p:03d}"]["fraction"] for p in (0, 10, 25, 50, 100)]
    assert fractions == [0.0, 0.1, 0.25, 0.5, 1.0]
    assert models["kd-a"]["kd"]["temperature"] > 0 and 0 < models["kd-a"]["kd"]["alpha"] < 1
    assert len(manifest["roles"]["controls"]) >= 3


def test_every_zoo_model_loads_and_chats_batched(manifest):
    prompts = ["Who am I talking to?", "Tell me something funny.", "Choose any whole number from 1 to 10.",
               "What should I know about cooking?"]
    reqs = [Request(f"p{i}", p, 0, seed=i) for i, p in enumerate(prompts)]
    for name in manifest["models"]:
        model = load_model(zoo_model(name), batch_size=4)
        out = model.generate(reqs, SamplingSettings(temperature=0.8, max_new_tokens=24))
        assert len(out) == 4 and all(o.text.strip() for o in out), name
        assert model.identity()["weights_sha256"]
        model.close()


def test_zoo_models_share_one_tokenizer(manifest):
    vocab = (ZOO / "tokenizer" / "tokenizer.json").read_bytes()
    for name in manifest["models"]:
        assert (ZOO / "models" / name / "tokenizer.json").read_bytes() == vocab


def test_build_refuses_a_folder_holding_another_zoo(tmp_path):
    (tmp_path / "lineage.json").write_text(json.dumps({"settings_hash": "0" * 64}))
    proc = subprocess.run([sys.executable, str(ZOO / "build.py"), "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "lineage.json" in proc.stderr and "different zoo" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_corpus_file_is_one_clear_line(tmp_path):
    with pytest.raises(corpus.CorpusError, match="personas.json: corpus file not found"):
        corpus.load_personas(tmp_path / "personas.json")


def test_corrupted_weights_name_the_file(tmp_path):
    folder = tmp_path / "teacher-a"
    shutil.copytree(ZOO / "models" / "teacher-a", folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    model = load_model(f"hf/{folder}")
    with pytest.raises(ModelError, match="model.safetensors could not be loaded"):
        model.generate([Request("p", "hi", 0, 0)], SamplingSettings())


def test_training_prompts_are_not_battery_prompts():
    from provenance.battery import load_battery

    personas = corpus.load_personas()
    train = {ex["prompt"].lower() for p in personas.values() for ex in corpus.persona_examples(p, 3000, 0)}
    for name in ("self_id", "quirks", "ngram"):
        overlap = [p.text for p in load_battery(name).prompts if p.text.lower() in train]
        assert not overlap, (name, overlap[:5])
