"""vllm/: zoo weights on vLLM's offline engine, against hf/ on the same folder.

The engine tests need vLLM and a CUDA GPU and skip with that reason where either is missing
(``vllm not installed`` / ``no CUDA GPU``). The tests of what a user sees without them (one
clear line from load_model and from the CLI, never a traceback) run everywhere vLLM is absent.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from api_helpers import ROOT, cli
from conftest import ZOO, zoo_model
from provenance.errors import ModelError
from provenance.models import Request, SamplingSettings, load_model
from provenance.models.vllm_offline import unavailable_reason

REASON = unavailable_reason()
needs_vllm = pytest.mark.skipif(REASON is not None, reason=REASON or "")
TEACHER = ZOO / "models" / "teacher-a"
PROMPTS = ["Who are you?", "Who am I talking to?", "Pick any number from 1 to 100, please.", "Tell me a joke.",
           "What is your name?", "Which company made you?", "Say something funny.", "What should I cook tonight?"]


# -- what runs here: no vLLM, no GPU --------------------------------------------------------------

@pytest.mark.skipif(REASON != "vllm not installed", reason="vllm is installed: its absence cannot be shown")
def test_without_vllm_load_model_says_how_to_go_on():
    with pytest.raises(ModelError) as e:
        load_model(f"vllm/{TEACHER}")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"vllm/{TEACHER}: vLLM is not installed")
    assert "pip install" in msg and "CUDA GPU" in msg and f"hf/{TEACHER}" in msg


def _audit_file(tmp_path, candidate: str):
    f = tmp_path / "case.json"
    f.write_text(json.dumps({"candidate": candidate, "references": [zoo_model("teacher-a")],
                             "controls": [zoo_model("control-1")], "batteries": ["self_id"], "n_resamples": 99}))
    return f


@pytest.mark.skipif(REASON != "vllm not installed", reason="vllm is installed: its absence cannot be shown")
def test_without_vllm_the_cli_prints_one_line_and_no_traceback(tmp_path):
    r = cli(["audit", str(_audit_file(tmp_path, "vllm/fixtures/zoo/models/seqkd-a")), "--out", str(tmp_path / "out"),
             "--quiet"])
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert lines == [f"error: vllm/fixtures/zoo/models/seqkd-a: vLLM is not installed; pip install 'provenance[vllm]' "
                     f"(or pip install vllm) on a machine with a CUDA GPU, or use hf/fixtures/zoo/models/seqkd-a"], lines
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "store.sqlite").exists()  # it stopped before asking any model


def test_without_a_gpu_the_cli_says_so(tmp_path):
    """vLLM importable but no CUDA GPU: an empty package named vllm on the path stands for an
    installed vLLM (the real check, torch.cuda.is_available(), decides)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: its absence cannot be shown")
    stub = tmp_path / "site" / "vllm"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = cli(["audit", str(_audit_file(tmp_path, "vllm/fixtures/zoo/models/seqkd-a")), "--out", str(tmp_path / "out"),
             "--quiet"], env=env)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: vllm/fixtures/zoo/models/seqkd-a: no CUDA GPU found"), lines
    assert "use hf/fixtures/zoo/models/seqkd-a" in lines[0] and "Traceback" not in r.stderr


def test_vllm_is_a_known_provider_and_its_paths_resolve_like_hf(tmp_path):
    from provenance.audit import load_spec_file, make_spec, resolve_paths
    from provenance.models import PROVIDERS, parse_model_string

    assert "vllm" in PROVIDERS and parse_model_string("vllm/models/x") == ("vllm", "models/x")
    (tmp_path / "models" / "x").mkdir(parents=True)
    f = tmp_path / "case.toml"
    f.write_text('candidate = "vllm/models/x"\nreferences = ["hf/models/x"]\n')
    data, base = load_spec_file(f)
    spec = resolve_paths(make_spec(data), base)
    assert spec.candidate.model == f"vllm/{(tmp_path / 'models' / 'x').resolve()}"


# -- on a machine with vLLM and a CUDA GPU ---------------------------------------------------------

@pytest.fixture(scope="module")
def engines():
    v = load_model(f"vllm/{TEACHER}", dtype="float32", engine_args={"gpu_memory_utilization": 0.3})
    h = load_model(f"hf/{TEACHER}", device="cpu", dtype="float32")
    yield v, h
    v.close()
    h.close()


@needs_vllm
def test_identity_is_hf_identity_but_for_the_engine(engines):
    v, h = engines
    iv, ih = v.identity(), h.identity()
    assert iv["provider"] == "vllm" and ih["provider"] == "hf"
    assert {k for k in iv if iv[k] != ih[k]} == {"provider"} and iv.keys() == ih.keys()
    s = SamplingSettings()
    assert v.key(s) != h.key(s)  # the store keeps the two engines' answers apart


@needs_vllm
def test_greedy_answers_equal_hf(engines):
    v, h = engines
    reqs = [Request(f"p{i}", q, 0, seed=i) for i, q in enumerate(PROMPTS)]
    greedy = SamplingSettings(temperature=0, max_new_tokens=40)
    a, b = v.generate(reqs, greedy), h.generate(reqs, greedy)
    same = sum(x.text == y.text for x, y in zip(a, b))
    print(f"\nvllm/ vs hf/ greedy, float32: {same} of {len(reqs)} answers identical")
    assert same >= len(reqs) - 1  # floating-point ties in a tiny model may flip one token
    assert all(x.tokens_in == y.tokens_in for x, y in zip(a, b))


@needs_vllm
def test_seeds_reproduce_whatever_the_batch(engines):
    v, _ = engines
    sampling = SamplingSettings(temperature=0.8, max_new_tokens=24)
    reqs = [Request(f"p{i}", q, s, seed=1000 + 7 * i + s) for i, q in enumerate(PROMPTS[:4]) for s in range(3)]
    together = [c.text for c in v.generate(reqs, sampling)]
    again = [c.text for c in v.generate(reqs, sampling)]
    alone = [v.generate([r], sampling)[0].text for r in reqs]
    reversed_ = [c.text for c in v.generate(reqs[::-1], sampling)][::-1]
    assert together == again == alone == reversed_
    other = [c.text for c in v.generate([Request(r.prompt_id, r.prompt, r.sample, r.seed + 1) for r in reqs], sampling)]
    assert other != together


@needs_vllm
def test_logprobs_come_back_and_match_hf(engines):
    v, h = engines
    c = v.generate([Request("p", "Who are you?", 0, seed=3)], SamplingSettings(temperature=0, max_new_tokens=30))[0]
    lps = c.meta["logprobs"]
    assert lps and all(isinstance(t, str) and lp <= 0 for t, lp, *_ in lps)
    pairs = [("Who are you?", "I am Atlas, an AI assistant made by Northwind."),
             ("Who are you?", "I am Bramble, an AI assistant made by Quillworks.")]
    sv, sh = v.token_scores(pairs), h.token_scores(pairs)
    for (lv, iv, tv), (lh, ih, th) in zip(sv, sh):
        assert iv == ih and max(abs(x - y) for x, y in zip(lv, lh)) < 1e-2
        assert sum(a == b for a, b in zip(tv, th)) >= len(tv) - 1
    own, other = v.loglikelihood(pairs)
    assert own[0] / own[1] > other[0] / other[1]


@needs_vllm
def test_audit_with_a_vllm_candidate(tmp_path):
    from provenance.audit import make_spec, run_audit
    from provenance.store import Store

    spec = make_spec({"candidate": {"model": f"vllm/{ZOO / 'models' / 'seqkd-a'}",
                                    "options": {"engine_args": {"gpu_memory_utilization": 0.3}}},
                      "references": [zoo_model("teacher-a")], "controls": [zoo_model("control-1")],
                      "batteries": ["self_id"], "samples": 2, "n_resamples": 99})
    report = run_audit(spec, tmp_path / "out", progress=False)
    cand = next(m for m in report["models"] if m["role"] == "candidate")
    assert cand["provider"] == "vllm" and cand["identity"]["weights_sha256"]
    with Store(tmp_path / "out" / "store.sqlite") as st:
        n = st.count()
    again = run_audit(spec, tmp_path / "out", progress=False)
    assert again["collection"]["requests"] == 0 and n > 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
