"""Replicas: one model served by several base URLs, against real loopback HTTP servers.

Requests are spread over the replicas; a replica that breaks (every connection reset, or the
server stopped mid-run) is left out and its calls are retried on the others, and one that
comes back is used again. Every answer is stored once, and no request reaches a server more
often than the failures in the evidence log account for.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from api_helpers import FAST, api_audit, small_battery
from provenance.audit import load_spec_file, make_spec, run_audit
from provenance.errors import SpecError
from provenance.models import Request, SamplingSettings, load_model
from provenance.store import Store
from provenance.testing import Faults, LoopbackServer

MOCKS = {"cand": "mock/cand", "ref": "mock/ref", "ctl": "mock/ctl"}
#: fast replica backoff for tests (a broken replica is tried again after 0.1 s, then 0.2, 0.4)
REPLICA = {"replica_backoff_initial": 0.1, "replica_backoff_max": 0.4}


def _audit(urls: list[str], battery, **options) -> dict:
    audit = api_audit(urls[0], battery, options={**REPLICA, **options})
    for e in [audit["candidate"], *audit["references"], *audit["controls"]]:
        e["options"].pop("base_url")
        e["options"]["base_urls"] = urls
    return audit


def _store(out):
    with Store(out / "store.sqlite") as st:
        rows = st.conn.execute("SELECT model_key, prompt_hash, sample, seed FROM responses").fetchall()
        log = st.request_log()
    return rows, log


def _hits(*servers) -> Counter:
    """Requests received per request key (model|seed|messages), over all servers."""
    total = Counter()
    for s in servers:
        total.update(s.attempts())
    return total


def _logged(log) -> tuple[Counter, Counter]:
    """(calls logged, ok calls logged) per (model, seed): the evidence log's side of the count."""
    calls, ok = Counter(), Counter()
    for e in log:
        k = (e["model"], json.loads(e["settings"])["seed"])
        calls[k] += 1
        ok[k] += e["outcome"] == "ok"
    return calls, ok


def _by_model_seed(hits: Counter) -> Counter:
    out = Counter()
    for key, n in hits.items():
        model, seed, _ = key.split("|")
        out[(model, int(seed))] += n
    return out


def test_replica_options_identity_and_bad_input(tmp_path):
    s = SamplingSettings()
    a, b = "http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"
    one = load_model("openai/m", base_url=a)
    assert one.identity()["base_url"] == a and one.endpoint_urls == [a]  # a single URL: as before
    as_list = load_model("openai/m", base_url=[a, b + "/"])
    as_urls = load_model("openai/m", base_urls=[b, a], max_concurrency=3)
    assert as_list.endpoint_urls == [a, b] and as_urls.endpoint_urls == [b, a]
    assert as_list.key(s) == as_urls.key(s) != one.key(s)  # one model; the order of replicas does not matter
    assert as_list.identity()["base_url"] == sorted([a, b])
    named = load_model("openai/m", base_urls=[a, b], replica_set="m-vllm")
    assert named.identity()["replica_set"] == "m-vllm" and "base_url" not in named.identity()
    assert named.key(s) == load_model("openai/m", base_urls=[b], replica_set="m-vllm").key(s)
    assert load_model("anthropic/m", base_url=[a, b]).endpoint_urls == [a, b]
    bad = [({"base_url": a, "base_urls": [b]}, "not both"),
           ({"base_urls": []}, "non-empty list"),
           ({"base_urls": [a, "127.0.0.1:8000"]}, "'127.0.0.1:8000' is not an http"),
           ({"base_urls": [a, a + "/"]}, "listed twice"),
           ({"base_urls": a, "replica_set": ""}, "replica_set must be a name")]
    for options, match in bad:
        with pytest.raises(SpecError, match=match) as e:
            load_model("openai/m", **options)
        assert "\n" not in str(e.value) and str(e.value).startswith("openai/m: ")
    # an audit file names the replicas as a list
    f = tmp_path / "case.toml"
    f.write_text(f'[candidate]\nmodel = "openai/m"\noptions = {{ base_urls = ["{a}", "{b}"], max_concurrency = 8 }}\n'
                 f'[[references]]\nmodel = "openai/r"\noptions = {{ base_url = ["{a}", "{b}"] }}\n')
    spec = make_spec(load_spec_file(f)[0])
    assert load_model(spec.candidate.model, **spec.candidate.options).endpoint_urls == [a, b]


def test_requests_spread_over_replicas_and_the_log_names_each(tmp_path):
    battery = small_battery(tmp_path / "battery", n_prompts=8, samples=3)
    with LoopbackServer(MOCKS, latency=0.02) as s1, LoopbackServer(MOCKS, latency=0.02) as s2, \
            LoopbackServer(MOCKS, latency=0.02) as s3:
        servers = [s1, s2, s3]
        urls = [s.base_url for s in servers]
        run_audit(make_spec(_audit(urls, battery, max_concurrency=4)), tmp_path / "out", progress=False, analyse=False)
        per_server = [sum(s.answered().values()) for s in servers]
        hits = _hits(*servers)
    rows, log = _store(tmp_path / "out")
    n = 3 * 8 * 3
    assert len(rows) == len({r[:3] for r in rows}) == n
    assert sum(per_server) == n and set(hits.values()) == {1}  # every request asked once, at one replica
    assert min(per_server) >= n // 3 // 2, per_server  # spread: no replica got less than half its share
    assert Counter(e["endpoint"] for e in log if e["outcome"] == "ok") == dict(zip(urls, per_server))
    assert len({json.dumps(e["model_key"]) for e in log}) == 3  # three models, one identity each
    print(f"\n3 replicas: {n} answers, {per_server} per replica")


def test_a_replica_that_resets_every_connection_is_left_out(tmp_path):
    battery = small_battery(tmp_path / "battery", n_prompts=8, samples=3)
    broken = Faults(rate=1.0, kinds=("reset",))
    with LoopbackServer(MOCKS, latency=0.02) as good1, LoopbackServer(MOCKS, faults=broken) as bad, \
            LoopbackServer(MOCKS, latency=0.02) as good2:
        urls = [good1.base_url, bad.base_url, good2.base_url]
        t0 = time.perf_counter()
        report = run_audit(make_spec(_audit(urls, battery, max_concurrency=4)), tmp_path / "out", progress=False)
        seconds = time.perf_counter() - t0
        hits, injected = _hits(good1, bad, good2), bad.injected()
        answered = Counter(good1.answered()) + Counter(good2.answered())
        n_bad = len([h for h in bad.hits if h.key])
    rows, log = _store(tmp_path / "out")
    n = 3 * 8 * 3
    assert len(rows) == len({r[:3] for r in rows}) == n  # the audit completed; every answer stored once
    assert set(answered.values()) == {1} and len(answered) == n
    assert all(hits[k] == 1 + injected[k] for k in hits), "a request was asked more often than its faults require"
    # the broken replica got its first calls (4 at once: its concurrency bound) and then only probes,
    # one per backoff period (0.1, 0.2, 0.4, 0.4, ... s), not a third of the traffic
    assert n_bad <= 4 + 2 + seconds / 0.1, (n_bad, seconds)
    assert n_bad < n / 3 / 2
    failed = [e for e in log if e["outcome"] != "ok"]
    assert len(failed) == n_bad and {e["outcome"] for e in failed} == {"retry:reset"}
    assert {e["endpoint"] for e in failed} == {bad.base_url}
    assert bad.base_url not in {e["endpoint"] for e in log if e["outcome"] == "ok"}
    # the report records one model with its replicas, and renders
    cand = next(m for m in report["models"] if m["role"] == "candidate")
    assert cand["identity"]["base_url"] == sorted(urls) and (tmp_path / "out" / "report.html").stat().st_size > 0
    print(f"\none of 3 replicas resets every connection: {n} answers stored once, audit and report in {seconds:.2f} s; "
          f"it got {n_bad} calls (the first ones, then probes), each retried on another replica")


def test_a_replica_stopped_mid_run_is_left_out_and_used_again_when_back(tmp_path):
    battery = small_battery(tmp_path / "battery", n_prompts=8, samples=4)
    n = 3 * 8 * 4
    a = LoopbackServer(MOCKS, latency=0.05).start()
    b = LoopbackServer(MOCKS, latency=0.05).start()
    port = b.port
    back: list[LoopbackServer] = []
    events: dict[str, float] = {}

    def outage():
        while len([h for h in b.hits if h.key]) < 10:
            time.sleep(0.005)
        b.stop()  # open connections are aborted, new ones refused
        events["stopped"] = time.perf_counter()
        time.sleep(0.3)
        back.append(LoopbackServer(MOCKS, latency=0.05, port=port).start())  # the same replica comes back
        events["back"] = time.perf_counter()

    watcher = threading.Thread(target=outage, daemon=True)
    try:
        watcher.start()
        run_audit(make_spec(_audit([a.base_url, b.base_url], battery, max_concurrency=2)), tmp_path / "out",
                  progress=False, analyse=False)
        events["done"] = time.perf_counter()
        watcher.join(timeout=10)
        assert back, "the audit ended before the replica came back; the test's timing is off"
        hits = _hits(a, b, back[0])
        after = sum(back[0].answered().values())
    finally:
        a.stop()
        b.stop()
        for s in back:
            s.stop()
    rows, log = _store(tmp_path / "out")
    assert len(rows) == len({r[:3] for r in rows}) == n  # the audit completed; every answer stored once
    calls, ok = _logged(log)
    assert set(ok.values()) == {1} and len(ok) == n
    # every request that reached a server is a logged call: nothing was asked more often than
    # the failures in the log (the calls that the outage broke off, or found refused) require
    seen = _by_model_seed(hits)
    assert all(seen[k] <= calls[k] for k in seen), "a request reached a server without a logged call"
    retries = sum(calls.values()) - n
    assert retries <= 2 * 2 + 10, retries  # the calls in flight at the stop, plus refused probes
    assert after > 0, "the replica that came back was not used again"
    oks = Counter(e["endpoint"] for e in log if e["outcome"] == "ok")
    assert oks[a.base_url] > 0 and oks[f"http://127.0.0.1:{port}/v1"] >= 10 + after - 2 * 2
    print(f"\nreplica stopped after 10 calls and back {events['back'] - events['stopped']:.2f} s later: {n} answers "
          f"stored once, {retries} calls retried on the other replica, {after} answered by the replica after its "
          f"return (audit ended {events['done'] - events['back']:.2f} s after that)")


def test_generate_fails_over_for_anthropic_models_too():
    """The synchronous path (model.generate) and the Messages API use the same replicas."""
    with LoopbackServer(MOCKS, faults=Faults(rate=1.0, kinds=("500",))) as bad, LoopbackServer(MOCKS) as good:
        m = load_model("anthropic/cand", base_url=[bad.base_url, good.base_url], max_concurrency=2, **FAST, **REPLICA)
        reqs = [Request(f"p{i}", f"question {i}", 0, seed=i) for i in range(12)]
        out = m.generate(reqs, SamplingSettings(max_new_tokens=8))
        answered, n_bad = good.answered(), len([h for h in bad.hits if h.key])
    assert all(c is not None and c.text for c in out)
    assert len(answered) == 12 and set(answered.values()) == {1}
    assert 1 <= n_bad <= 2 + 3, n_bad  # its first two calls, then probes


def test_any_replica_of_a_zoo_model_gives_the_same_answer_for_a_seed():
    """Two servers of one zoo model (hf/ behind HTTP): a sample's seed makes its answer, so it
    does not matter which replica answered: the identity is one model's."""
    from conftest import zoo_model

    local = load_model(zoo_model("teacher-a"))
    reqs = [Request(f"p{i}", q, s, seed=500 + 10 * i + s)
            for i, q in enumerate(["Who am I talking to?", "Pick a number from 1 to 10.", "Tell me a joke."])
            for s in range(2)]
    sampling = SamplingSettings(temperature=0.8, max_new_tokens=12)
    in_process = [c.text for c in local.generate(reqs, sampling)]
    # each server its own copy, loaded here one after the other: transformers' loading is not
    # safe when two server threads load at once (the first copy was loaded above)
    copy = load_model(zoo_model("teacher-a"))
    copy.tokenizer  # loads tokenizer and weights
    with LoopbackServer({"teacher-a": local}) as s1, LoopbackServer({"teacher-a": copy}) as s2:
        remote = load_model("openai/teacher-a", base_url=[s1.base_url, s2.base_url], max_concurrency=1,
                            **{**FAST, "timeout": 300})
        over_http = remote.generate(reqs, sampling)
        per_server = [sum(s.answered().values()) for s in (s1, s2)]
    assert per_server == [3, 3]
    assert [c.text for c in over_http] == in_process


def test_a_set_of_replicas_none_of_which_answers_is_told_in_seconds():
    import socket

    ports = []
    for _ in range(2):  # two ports nothing listens on
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    m = load_model("openai/m", base_urls=[f"http://127.0.0.1:{p}/v1" for p in ports], **FAST, **REPLICA)
    t0 = time.perf_counter()
    with pytest.raises(Exception, match="cannot connect to http://127.0.0.1"):
        m.generate([Request(f"p{i}", "hello", 0, seed=i) for i in range(20)], SamplingSettings())
    assert time.perf_counter() - t0 < 10
