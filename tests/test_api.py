"""openai/ models against a real OpenAI-compatible HTTP server on 127.0.0.1 (no mocks of
HTTP): identity, stored log-probabilities and response ids, the evidence log, faults,
Retry-After, caps, bad input and the API key never written anywhere."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections import Counter

import pytest

from api_helpers import FAST, api_audit, cli, small_battery, write_audit
from conftest import zoo_model
from provenance.audit import make_spec, run_audit
from provenance.errors import CollectionIncomplete, SpecError
from provenance.fetch import Limits
from provenance.models import Request, SamplingSettings, load_model
from provenance.store import Store
from provenance.testing import FAULT_KINDS, Faults, LoopbackServer

KEY = "sk-test-Zx81q0pLmN4rT7vW2yB5cD9eF3gH6jK0"
MOCKS = {"cand": "mock/cand", "ref": "mock/ref", "ctl": "mock/ctl"}


@pytest.fixture
def server():
    with LoopbackServer(MOCKS) as srv:
        yield srv


@pytest.fixture
def battery(tmp_path):
    return small_battery(tmp_path / "battery", n_prompts=8, samples=3)


def _rows(store_path):
    con = sqlite3.connect(store_path)
    try:
        return con.execute("SELECT model_key, prompt_hash, sample, meta FROM responses").fetchall()
    finally:
        con.close()


def test_identity_excludes_transport_and_key(monkeypatch):
    monkeypatch.setenv("PROV_TEST_KEY", KEY)
    s = SamplingSettings()
    a = load_model("openai/gpt-x", base_url="http://127.0.0.1:9/v1", api_key_env="PROV_TEST_KEY")
    b = load_model("openai/gpt-x", base_url="http://127.0.0.1:9/v1/", timeout=3, max_concurrency=64, max_attempts=2)
    assert a.key(s) == b.key(s)
    assert KEY not in json.dumps(a.identity())
    assert a.key(s) != load_model("openai/gpt-x", base_url="http://127.0.0.1:9/v2").key(s)
    assert a.key(s) != load_model("openai/gpt-x", base_url="http://127.0.0.1:9/v1", system_prompt="Be terse.").key(s)
    assert a.key(s) != a.key(SamplingSettings(temperature=0.2))
    assert a.key(s) != load_model("openai/gpt-y", base_url="http://127.0.0.1:9/v1").key(s)
    assert a.request_settings(Request("p", "hi", 0, seed=42), s)["seed"] == 42
    with pytest.raises(SpecError, match="PROV_MISSING_KEY.*not set"):
        load_model("openai/gpt-x", api_key_env="PROV_MISSING_KEY").check_ready()
    with pytest.raises(SpecError, match="unknown option"):
        load_model("openai/gpt-x", temprature=0.3)
    with pytest.raises(SpecError, match="not an http"):
        load_model("openai/gpt-x", base_url="127.0.0.1:8000")


def test_audit_over_http_stores_answers_logprobs_ids_and_evidence_log(server, battery, tmp_path):
    spec = make_spec(api_audit(server.base_url, battery, options={"prices": {"input": 1.0, "output": 2.0}}))
    run_audit(spec, tmp_path / "out", progress=False, analyse=False)
    with Store(tmp_path / "out" / "store.sqlite") as st:
        rows = st.conn.execute("SELECT model_key, prompt_hash, sample, seed, text, content_hash, tokens_in, tokens_out, meta "
                               "FROM responses").fetchall()
        log = st.request_log()
    assert len(rows) == 3 * 8 * 3 == len({r[:3] for r in rows})
    meta = json.loads(rows[0][8])
    assert meta["response_id"].startswith("chatcmpl-") and meta["served_model"] in MOCKS
    assert meta["logprobs"] and all(isinstance(lp, float) for _, lp in meta["logprobs"])
    assert all(r[6] and r[7] for r in rows)
    # one evidence-log row per HTTP call, tied to the stored answer by content hash
    assert len(log) == len(rows) and all(e["outcome"] == "ok" and e["status"] == 200 for e in log)
    by_key = {(r[0], r[1], r[2]): r for r in rows}
    for e in log:
        row = by_key[(e["model_key"], e["prompt_hash"], e["sample"])]
        assert e["content_hash"] == row[5] and e["response_id"] == json.loads(row[8])["response_id"]
        settings = json.loads(e["settings"])
        assert settings["seed"] == row[3] and settings["model"] == e["model"] and "messages" not in settings
        assert e["endpoint"] == server.base_url and e["cost"] == pytest.approx((row[6] * 1 + row[7] * 2) / 1e6)
    # each request reached the server once, with its seed; a second run asks nothing
    assert set(server.attempts().values()) == {1} and len(server.hits) == len(rows)
    run_audit(spec, tmp_path / "out", progress=False, analyse=False)
    assert len(server.hits) == len(rows)


def test_same_answers_over_http_as_local_for_the_same_seed():
    """The loopback server runs the zoo model through the hf backend; a request's seed makes
    its answer, so openai/ over HTTP and hf/ in-process agree word for word."""
    local = load_model(zoo_model("teacher-a"))
    reqs = [Request(f"p{i}", q, s, seed=1000 + 10 * i + s)
            for i, q in enumerate(["Who am I talking to?", "Pick a number from 1 to 10."]) for s in range(2)]
    sampling = SamplingSettings(temperature=0.8, max_new_tokens=16)
    with LoopbackServer({"teacher-a": local}) as srv:
        remote = load_model("openai/teacher-a", base_url=srv.base_url, **{**FAST, "timeout": 300})
        over_http = remote.generate(reqs, sampling)
    in_process = local.generate(reqs, sampling)
    assert [c.text for c in over_http] == [c.text for c in in_process]
    assert all(len(c.meta["logprobs"]) > 0 for c in over_http)


def test_mixed_faults_every_answer_once_and_retries_only_for_faults(tmp_path):
    """20% of HTTP attempts fail, of every kind the server injects; the audit completes, every
    answer is stored once, and each request reached the server exactly 1 + (its faults) times."""
    battery = small_battery(tmp_path / "battery", n_prompts=14, samples=3)
    faults = Faults(rate=0.2, retry_after=0.02, slow_seconds=1.5, seed=3, cycle=True)
    with LoopbackServer(MOCKS, faults=faults) as srv:
        spec = make_spec(api_audit(srv.base_url, battery, options={"timeout": 0.75, "max_concurrency": 16}))
        run_audit(spec, tmp_path / "out", progress=False, analyse=False)
        attempts, injected = srv.attempts(), srv.injected()
        kinds = Counter(h.fault for h in srv.hits if h.fault)
    rows = _rows(tmp_path / "out" / "store.sqlite")
    assert len(rows) == len(set(r[:3] for r in rows)) == 3 * 14 * 3
    assert len(attempts) == len(rows)
    assert all(attempts[k] == 1 + injected[k] for k in attempts), "a request was asked more often than its faults require"
    assert set(kinds) == set(FAULT_KINDS), kinds
    assert max(attempts.values()) <= FAST["max_attempts"]
    with Store(tmp_path / "out" / "store.sqlite") as st:
        log = st.request_log()
    assert sum(e["outcome"] == "ok" for e in log) == len(rows)
    assert sum(e["outcome"].startswith("retry:") for e in log) == sum(injected.values())
    # the log is in the order things happened: a request's failed attempts (written from the
    # store's worker thread) come before its answer, numbered 1, 2, ...
    by_request: dict = {}
    for e in log:
        by_request.setdefault((e["model_key"], e["prompt_hash"], e["sample"]), []).append(e)
    for entries in by_request.values():
        assert [e["outcome"] == "ok" for e in entries] == [False] * (len(entries) - 1) + [True]
        assert [e["attempt"] for e in entries] == list(range(1, len(entries) + 1))
    print(f"\n20% faults: {len(rows)} answers stored once each, {sum(attempts.values())} requests at the server, "
          f"{sum(injected.values())} faults injected ({dict(kinds)}), at most {max(attempts.values())} attempts "
          f"for one request")


def test_retry_after_is_honoured_for_the_whole_endpoint(battery):
    """A 429 with Retry-After: 0.4 makes that request wait 0.4 s, and pauses the other
    request queued for the same endpoint too."""
    with LoopbackServer({"m": "mock/m"}, faults=Faults(rate=1.0, kinds=("429",), retry_after=0.4,
                                                        max_per_request=1)) as srv:
        m = load_model("openai/m", base_url=srv.base_url, **{**FAST, "max_concurrency": 1})
        m.generate([Request("p", "hello", 0, seed=1), Request("p", "hello", 1, seed=2)], SamplingSettings())
        hits = sorted((h for h in srv.hits if h.key), key=lambda h: h.time)
    a1 = next(h for h in hits if h.key.startswith("m|1|"))
    assert [h.status for h in hits].count(429) == 2 and [h.status for h in hits].count(200) == 2
    assert all(h.time - a1.time >= 0.39 for h in hits if h is not a1)


def test_cost_cap_stops_cleanly_and_resumes_without_asking_twice(server, battery, tmp_path):
    prices = {"input": 1000.0, "output": 1000.0}  # USD per 1M tokens: about 0.013 USD per call here, 0.94 USD in all
    spec = make_spec(api_audit(server.base_url, battery, options={"prices": prices, "max_concurrency": 4}))
    cap = 0.5
    with pytest.raises(CollectionIncomplete) as e:
        run_audit(spec, tmp_path / "out", progress=False, limits=Limits(max_cost=cap), analyse=False)
    assert e.value.at_cap and "stopped at --max-cost 0.5 USD" in str(e.value) and "to resume" in str(e.value)
    with Store(tmp_path / "out" / "store.sqlite") as st:
        spent = st.conn.execute("SELECT sum(cost) FROM requests").fetchone()[0]
        n = st.count()
    # never over the cap: each call's worst case is reserved before it is sent
    assert 0 < spent <= cap and 0 < n < 72
    assert len(server.hits) == n  # nothing asked that was not stored
    print(f"\ncost cap {cap} USD: stopped after {n} of 72 answers, {spent:.4f} USD spent")
    run_audit(spec, tmp_path / "out", progress=False, analyse=False)
    assert _rows(tmp_path / "out" / "store.sqlite").__len__() == 72
    assert set(server.attempts().values()) == {1}


def test_request_cap(server, battery, tmp_path):
    spec = make_spec(api_audit(server.base_url, battery))
    with pytest.raises(CollectionIncomplete, match="stopped at --max-requests 10"):
        run_audit(spec, tmp_path / "out", progress=False, limits=Limits(max_requests=10), analyse=False)
    assert len(server.hits) == 10 and len(_rows(tmp_path / "out" / "store.sqlite")) == 10


def test_max_cost_without_prices_is_a_clear_error(server, battery, tmp_path):
    spec = make_spec(api_audit(server.base_url, battery))
    with pytest.raises(SpecError, match="--max-cost needs prices for openai/cand"):
        run_audit(spec, tmp_path / "out", progress=False, limits=Limits(max_cost=1.0))


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_bad_input_one_clear_line_each_and_the_rest_goes_on(battery, tmp_path):
    """Unreachable base URL, wrong key, unknown model, a non-JSON body: one line each; the
    good model's answers are collected and stored; the key appears nowhere."""
    with LoopbackServer({"good": "mock/good", "other": "mock/other"}, api_key=KEY) as srv, \
            LoopbackServer({"html": "mock/html"}, faults=Faults(rate=1.0, kinds=("content-type",))) as html:
        per_model = {
            "unreachable": {"base_url": f"http://127.0.0.1:{_closed_port()}/v1"},
            "wrongkey": {"api_key_env": "PROV_WRONG_KEY"},
            "nosuchmodel": {},
            "html": {"base_url": html.base_url, "max_attempts": 3},
            "good": {},
        }
        audit = api_audit(srv.base_url, battery, names=("unreachable", "wrongkey", "nosuchmodel", "html", "good"),
                          options={"api_key_env": "PROV_KEY"}, per_model=per_model)
        audit_file = write_audit(tmp_path / "audit.json", audit)
        r = cli(["audit", str(audit_file), "--out", str(tmp_path / "out"), "--quiet"],
                env={"PROV_KEY": KEY, "PROV_WRONG_KEY": "sk-wrong-key-0000000000000000"})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(lines) == 5, r.stderr
    by = {name: next(ln for ln in lines if f"({name})" in ln) for name in per_model if name != "good"}
    assert by["unreachable"].startswith("error: openai/unreachable") and "cannot connect" in by["unreachable"]
    assert "HTTP 401" in by["wrongkey"] and "$PROV_WRONG_KEY" in by["wrongkey"]
    assert "HTTP 404" in by["nosuchmodel"] and "does not exist" in by["nosuchmodel"]
    assert "not JSON (text/html" in by["html"] and "base_url" in by["html"]
    assert lines[-1].startswith("error: ") and "run the same command again to resume" in lines[-1]
    rows = _rows(tmp_path / "out" / "store.sqlite")
    with Store(tmp_path / "out" / "store.sqlite") as st:
        good_key = {e["model_key"] for e in st.request_log() if e["model"] == "good"}
    assert len(rows) == 8 * 3 and {r[0] for r in rows} == good_key
    # the store is intact and the same command resumes from it
    assert sqlite3.connect(tmp_path / "out" / "store.sqlite").execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    _assert_no_key(tmp_path, r.stdout + r.stderr)


def test_api_key_is_never_written(battery, tmp_path):
    """A whole audit with a key, plus a refused key, then grep everything written for it."""
    with LoopbackServer(MOCKS, api_key=KEY) as srv:
        audit = api_audit(srv.base_url, battery, options={"api_key_env": "PROV_KEY"})
        audit_file = write_audit(tmp_path / "audit.json", audit)
        ok = cli(["audit", str(audit_file), "--out", str(tmp_path / "out")], env={"PROV_KEY": KEY})
        assert ok.returncode == 0, ok.stderr
        assert all(h.authorization for h in srv.hits)
        n_hits = len(srv.hits)
        offline = cli(["report", str(tmp_path / "out")])  # re-rendered from the store: no key, no call
        assert offline.returncode == 0 and len(srv.hits) == n_hits, offline.stderr
        bad = cli(["audit", str(audit_file), "--out", str(tmp_path / "out2")], env={"PROV_KEY": KEY[:-1] + "X"})
        assert bad.returncode == 2
        capped = cli(["audit", str(audit_file), "--out", str(tmp_path / "out3"), "--max-requests", "5"],
                     env={"PROV_KEY": KEY})
        assert capped.returncode == 3 and capped.stderr.strip().splitlines()[-1].startswith(
            "stopped: stopped at --max-requests 5: 5 API calls made in this run, 5 answers stored, 67 still missing; "
            "run the same command again to resume"), capped.stderr
    assert (tmp_path / "out" / "report.html").exists()
    _assert_no_key(tmp_path, ok.stdout + ok.stderr + bad.stdout + bad.stderr + capped.stderr + offline.stdout,
                   also=[KEY[:-1] + "X"])


def _assert_no_key(folder, output: str, also=()):
    for secret in [KEY, *also]:
        assert secret not in output
        for f in folder.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f"API key found in {f}"


def test_store_from_before_the_evidence_log_gets_it_on_open(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as st:
        st.conn.execute("DROP TABLE requests")
        st.conn.commit()
    with Store(path) as st:
        st.log_request({"time": "t", "model_key": "k", "endpoint": "e", "model": "m", "outcome": "ok"})
        assert st.request_log()[0]["outcome"] == "ok"


def test_anthropic_messages_api(battery, tmp_path, monkeypatch):
    monkeypatch.setenv("PROV_KEY", KEY)
    with LoopbackServer(MOCKS, api_key=KEY) as srv:
        m = load_model("anthropic/cand", base_url=srv.base_url, api_key_env="PROV_KEY", system_prompt="Be brief.", **FAST)
        out = m.generate([Request("p", "Who are you?", 0, seed=5)], SamplingSettings(max_new_tokens=20))
        assert out[0].text and out[0].meta["response_id"].startswith("msg_") and out[0].tokens_out
        assert m.request_settings(Request("p", "x", 0, seed=5), SamplingSettings())["seed_sent"] is False
        with pytest.raises(Exception, match="HTTP 401"):
            monkeypatch.setenv("PROV_KEY", "sk-ant-wrong-000000000000")
            load_model("anthropic/cand", base_url=srv.base_url, api_key_env="PROV_KEY", **FAST).generate(
                [Request("p", "Who are you?", 0, seed=5)], SamplingSettings())
    with pytest.raises(SpecError, match="ANTHROPIC_API_KEY"):
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        load_model("anthropic/claude-x").generate([Request("p", "hi", 0, seed=1)], SamplingSettings())


def test_a_failing_backend_answers_500_with_its_reason():
    """The loopback server turns a backend exception into an HTTP 500 with a JSON error, as a
    real server does, instead of dropping the connection."""
    import httpx

    from provenance.models.mock import MockModel

    class Broken(MockModel):
        def generate(self, requests, sampling):
            raise RuntimeError("CUDA out of memory\nsecond line")

    with LoopbackServer({"broken": Broken("broken")}) as srv:
        r = httpx.post(f"{srv.base_url}/chat/completions", timeout=10,
                       json={"model": "broken", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert r.status_code == 500
    assert r.json()["error"]["message"] == "the model backend failed: RuntimeError: CUDA out of memory"
