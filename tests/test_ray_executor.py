"""The Ray executor on a real local Ray cluster (started here on 127.0.0.1 with 3 CPUs), real
zoo models and real SQLite stores: the same answers as the local executor, nothing lost and
nothing finished asked twice when a worker actor or the driver is killed mid-run.

The cluster tests are slow (each Ray actor starts a Python process that imports torch) and
are skipped when ray is not installed (pip install 'provenance[ray]').
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, zoo_model
from provenance.battery import load_battery
from provenance.collect import collect
from provenance.models import load_model
from provenance.store import Store

try:
    import ray
except ImportError:  # pragma: no cover - depends on the environment
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="ray is not installed (pip install 'provenance[ray]')")
MODELS = ("teacher-a", "control-1")
COLUMNS = ("model_key, prompt_hash, sample, prompt_id, prompt, text, content_hash, finish_reason, tokens_in, "
           "tokens_out, seed, meta")


def tiny_battery(folder: Path, n_prompts: int = 10, samples: int = 2, max_new_tokens: int = 12) -> Path:
    """The first quirks prompts, few samples, short answers: a quick real battery."""
    import shutil

    shutil.copytree(ROOT / "probes" / "quirks", folder)
    lines = (folder / "prompts.jsonl").read_text().splitlines()[:n_prompts]
    (folder / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    cfg = yaml.safe_load((folder / "battery.yaml").read_text())
    cfg["generation"].update(samples=samples, max_new_tokens=max_new_tokens)
    (folder / "battery.yaml").write_text(yaml.safe_dump(cfg))
    return folder


def rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as c:
        return c.execute(f"SELECT {COLUMNS} FROM responses ORDER BY model_key, prompt_hash, sample").fetchall()


def zoo(*names: str) -> dict:
    return {n: load_model(zoo_model(n)) for n in names}


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    return load_battery(str(tiny_battery(tmp_path_factory.mktemp("bat") / "tiny_quirks")))


@pytest.fixture(scope="module")
def local_store(battery, tmp_path_factory):
    """The local executor's store for the zoo models and the tiny battery, seed 0."""
    path = tmp_path_factory.mktemp("local") / "store.sqlite"
    with Store(path) as store:
        stats = collect(zoo(*MODELS), [battery], store, seed=0, progress=False)
    assert stats.requests == 2 * len(battery.prompts) * 2
    return path


@pytest.fixture(scope="module")
def cluster():
    """A real Ray cluster on this machine: a head node on 127.0.0.1 with 3 CPUs."""
    if ray is None:
        pytest.skip("ray is not installed (pip install 'provenance[ray]')")
    ray.init(num_cpus=3, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             object_store_memory=200 * 1024**2, namespace="provenance-tests")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def executor(**kw):
    from provenance.executors import ExecutorSettings, RayExecutor

    on_batch = kw.pop("on_batch", None)
    return RayExecutor(ExecutorSettings(kind="ray", **kw), on_batch=on_batch)


def planned(battery, samples: int = 2) -> Counter:
    return Counter((p.id, s) for p in battery.prompts for s in range(samples))


@pytest.mark.slow
@needs_ray
def test_ray_store_equals_local_store(cluster, battery, local_store, tmp_path):
    # batches of 3 across 2 replicas per model: other batches than the local executor's 64
    ex = executor(workers=2, chunk=3)
    with Store(tmp_path / "store.sqlite") as store:
        stats = collect(zoo(*MODELS), [battery], store, seed=0, progress=False, executor=ex)
    assert rows(tmp_path / "store.sqlite") == rows(local_store)
    assert stats.requests == 40 and stats.cached == 0 and not ex.deaths
    assert sorted(ex.started) == ["control-1#1", "control-1#2", "teacher-a#1", "teacher-a#2"]
    for label in MODELS:  # every request answered once, by one of the model's own replicas
        recs = [r for r in ex.log if r.label == label]
        assert Counter(x for r in recs for x in r.requests) == planned(battery)
        assert {r.worker.split("#")[0] for r in recs} == {label}
    # a second run finds everything stored: no actor is started, nothing is asked
    again = executor(workers=2, chunk=3)
    with Store(tmp_path / "store.sqlite") as store:
        stats = collect(zoo(*MODELS), [battery], store, seed=0, progress=False, executor=again)
    assert stats.requests == 0 and stats.cached == 40 and again.started == [] and again.log == []


@pytest.mark.slow
@needs_ray
def test_killed_worker_loses_nothing_and_repeats_nothing_finished(cluster, battery, local_store, tmp_path):
    killed = []

    def kill_first_replica(rec):  # after its first answered batch, SIGKILL replica 1's process
        if rec.worker == "teacher-a#1" and not killed:
            os.kill(rec.pid, signal.SIGKILL)
            killed.append(rec.pid)

    ex = executor(workers=2, chunk=2, on_batch=kill_first_replica)
    with Store(tmp_path / "store.sqlite") as store:
        stats = collect(zoo("teacher-a"), [battery], store, seed=0, progress=False, executor=ex)
    assert killed and ex.deaths == ["teacher-a#1"]
    assert ex.resent and {w for w, _ in ex.resent} == {"teacher-a#1"}  # its batch in flight went to another
    # a replacement is started while the queue holds more than the live replica can take
    assert ex.started[:2] == ["teacher-a#1", "teacher-a#2"] and len(ex.started) <= 4
    per_worker = Counter()
    for r in ex.log:
        per_worker[r.worker] += len(r.requests)
    # what each actor answered adds up to the plan exactly: nothing lost, nothing answered twice
    assert sum(per_worker.values()) == 20 == stats.requests, per_worker
    assert Counter(x for r in ex.log for x in r.requests) == planned(battery)
    assert per_worker["teacher-a#1"] >= 2 and {r.pid for r in ex.log if r.worker == "teacher-a#1"} == set(killed)
    teacher_rows = [r for r in rows(local_store) if r[0] == ex.log[0].key]
    assert rows(tmp_path / "store.sqlite") == teacher_rows


def _audit_file(tmp_path: Path, battery_dir: Path, address: str, store: Path) -> Path:
    f = tmp_path / "audit.toml"
    f.write_text(f"""seed = 0
batteries = ["{battery_dir}"]
store = "{store}"
candidate = "{zoo_model('teacher-a')}"
references = ["{zoo_model('control-1')}"]

[executor]
kind = "ray"
address = "{address}"
workers = 1
chunk = 1
""")
    return f


@pytest.mark.slow
@needs_ray
def test_killed_driver_resumes_without_asking_twice(cluster, local_store, tmp_path):
    battery_dir = tiny_battery(tmp_path / "tiny_quirks")
    store = tmp_path / "store.sqlite"
    audit = _audit_file(tmp_path, battery_dir, cluster, store)
    cmd = [sys.executable, "-m", "provenance.cli", "audit", str(audit), "--out", str(tmp_path / "out"),
           "--collect-only", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stored, deadline = 0, time.time() + 240
    while time.time() < deadline and driver.poll() is None:
        if store.exists():
            try:
                with sqlite3.connect(store, timeout=5) as c:
                    stored = c.execute("SELECT count(*) FROM responses").fetchone()[0]
            except sqlite3.OperationalError:  # tables not created yet
                stored = 0
            if stored >= 3:
                break
        time.sleep(0.02)
    assert driver.poll() is None, f"the driver ended before it could be killed: {driver.communicate()}"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    kept = len(rows(store))
    assert 3 <= kept < 40
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    m = re.search(r"collected (\d+) answers \((\d+) already stored\)", done.stdout)
    assert m, done.stdout
    # the second driver asked only what the first had not stored, and the store is whole
    assert (int(m.group(1)), int(m.group(2))) == (40 - kept, kept)
    assert rows(store) == rows(local_store)


def test_ray_missing_is_one_line(tmp_path):
    code = "import sys; sys.modules['ray'] = None; from provenance.cli import main; main()"
    r = subprocess.run([sys.executable, "-c", code, "audit", "--candidate", "mock/a", "--reference", "mock/b",
                        "--executor", "ray", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and r.stderr.strip() == "error: --executor ray needs ray: pip install 'provenance[ray]'"


@pytest.mark.parametrize("args, message", [
    (["--address", "127.0.0.1:6379"], "--address and --ray-workers need --executor ray"),
    (["--executor", "ray", "--ray-workers", "0"], "executor.workers: Input should be greater than or equal to 1"),
])
def test_executor_options_are_checked(tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "audit", "--candidate", "mock/a", "--reference",
                        "mock/b", "--out", str(tmp_path / "out"), *args], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


@needs_ray
def test_unreachable_address_fails_fast(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "audit", "--candidate", "mock/a", "--reference",
                        "mock/b", "--battery", "self_id", "--executor", "ray", "--address", f"127.0.0.1:{port}",
                        "--out", str(tmp_path / "out"), "--quiet"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and time.time() - t0 < 60
    assert r.stderr.strip().startswith(f"error: --address 127.0.0.1:{port}: no Ray cluster answers there"), r.stderr


@pytest.mark.slow
@needs_ray
def test_model_whose_replicas_all_die_is_reported_and_resumes(cluster, battery, local_store, tmp_path):
    def kill_it(rec):  # the only replica, after its first answered batch; no replacement allowed
        os.kill(rec.pid, signal.SIGKILL)

    ex = executor(workers=1, max_restarts=0, chunk=2, on_batch=kill_it)
    with Store(tmp_path / "store.sqlite") as store:
        stats = collect(zoo("teacher-a"), [battery], store, seed=0, progress=False, executor=ex)
    assert list(stats.failed) == ["teacher-a"]
    assert "1 of its Ray workers died, more than executor.max_restarts = 0" in stats.failed["teacher-a"]
    kept = len(rows(tmp_path / "store.sqlite"))
    assert kept == stats.requests and 2 <= kept < 20
    again = executor(workers=1, chunk=2)
    with Store(tmp_path / "store.sqlite") as store:
        stats = collect(zoo("teacher-a"), [battery], store, seed=0, progress=False, executor=again)
    assert (stats.requests, stats.cached) == (20 - kept, kept) and not stats.failed
    assert rows(tmp_path / "store.sqlite") == [r for r in rows(local_store) if r[0] == ex.log[0].key]


@pytest.mark.slow
@needs_ray
def test_worker_larger_than_any_node_is_refused(cluster, battery, tmp_path):
    from provenance.errors import SpecError

    with Store(tmp_path / "store.sqlite") as store, pytest.raises(SpecError, match="asks for 1 GPUs"):
        collect(zoo("teacher-a"), [battery], store, seed=0, progress=False, executor=executor(num_gpus=1))


def test_example_audit_file_and_manifest_parse():
    from provenance.audit import load_spec_file, make_spec, resolve_paths
    from provenance.executors import executor_settings

    data, base = load_spec_file(ROOT / "docs" / "examples" / "ray-audit.toml")
    ex = executor_settings(data.pop("executor"))
    assert (ex.kind, ex.address, ex.workers) == ("ray", "auto", 2)
    spec = resolve_paths(make_spec(data), base)
    assert all(Path(e.model.split("/", 1)[1]).is_dir() for e in [spec.candidate, *spec.references, *spec.controls])
    manifest = yaml.safe_load((ROOT / "docs" / "examples" / "kuberay-raycluster.yaml").read_text())
    assert manifest["kind"] == "RayCluster" and manifest["spec"]["rayVersion"] == "2.60.0"


def test_local_executor_flag_keeps_the_spec(tmp_path):
    """--executor local is today's path; the executor is never part of audit.json."""
    r = subprocess.run([sys.executable, "-m", "provenance.cli", "audit", "--candidate", "mock/a", "--reference",
                        "mock/b", "--battery", "self_id[language=en]", "--executor", "local", "--collect-only",
                        "--quiet", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert "executor" not in (tmp_path / "out" / "audit.json").read_text()


@pytest.mark.slow
@needs_ray
def test_benchmark_quick_run(tmp_path):
    """benchmarks/ray_executor.py --quick, in its own process (it starts its own Ray instance)."""
    import json

    out = tmp_path / "ray_executor.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ray_executor.py"), "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["identical_answers"] and set(res["runs"]) == {"local", "ray-1", "ray-2"}
    assert all(run["answers"] == 24 and run["end_to_end_answers_per_second"] > 0 for run in res["runs"].values())
    assert res["machine"]["cpus"] >= 1 and len(res["machine"]["load_average"]) == 3
    assert set(res["ratios_to_local"]) == {"ray-1_end_to_end", "ray-1_steady", "ray-2_end_to_end", "ray-2_steady"}


def _cpus_back(total: float, timeout: float = 30.0) -> bool:
    """Every CPU of the test cluster is free again (the run ended all its actors)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ray.available_resources().get("CPU", 0) >= total:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@needs_ray
def test_generation_error_on_a_worker_is_one_line_and_frees_the_cluster(cluster, battery, tmp_path):
    from provenance.errors import ModelError

    failing = {"mock-f": load_model("mock/f", fail_on=battery.prompts[-1].text)}
    with Store(tmp_path / "store.sqlite") as store, pytest.raises(ModelError) as err:
        collect(failing, [battery], store, seed=0, progress=False, executor=executor(chunk=2))
    assert str(err.value).startswith("mock-f: generation failed on Ray worker mock-f#1 (RuntimeError: mock/f: "
                                     "injected failure on ") and "\n" not in str(err.value)
    assert _cpus_back(3)


@pytest.mark.slow
@needs_ray
def test_worker_that_builds_another_model_stores_nothing(cluster, battery, tmp_path):
    import shutil

    from provenance.errors import ModelError

    folder = tmp_path / "teacher-copy"
    shutil.copytree(ROOT / "fixtures" / "zoo" / "models" / "teacher-a", folder)
    model = load_model(f"hf/{folder}")
    model.identity()  # the driver's view; then the folder changes under it, as on another node
    template = folder / "chat_template.jinja"
    template.write_text(template.read_text() + "\n")
    with Store(tmp_path / "store.sqlite") as store, pytest.raises(ModelError, match="built a different model"):
        collect({"teacher-copy": model}, [battery], store, seed=0, progress=False, executor=executor())
    assert rows(tmp_path / "store.sqlite") == [] and _cpus_back(3)
