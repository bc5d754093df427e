"""Throughput of API collection against the loopback OpenAI-compatible server.

The server (``provenance.testing.server``, in its own process) answers every request after
an injected latency of 200 ms; the client is the real audit path (``collect`` ->
``provenance.fetch``: tenacity retries, per-endpoint semaphore, one SQLite commit and one
evidence-log row per answer). With 32 requests in flight the bound is 32 / 0.2 s =
160 answers/s; we report the measured rate as a fraction of it, without faults and with
20% of attempts failing (429/500/503 with Retry-After 50 ms, resets), and, to tell the
machine's limits from the client's, without injected latency (the rate client and server
reach together on the CPU they get) and from bare clients making the same calls with nothing
else (no retries, store or evidence log): aiohttp, the audit path's HTTP stack (the most it
and the loopback server give on this machine, a ceiling for the audit path), and httpx, the
stack it replaced (3 ms of CPU per call against 0.6 ms: on 2 cores it could not reach 90%).
The fault-free audit run is repeated three times; the median run is the headline and every
repeat is recorded.

The server answers with ``mock/`` backends: the point is the client's concurrency, not
model speed (a real model's own latency would just replace the injected 200 ms). Run:

    .venv/bin/python benchmarks/api_throughput.py            # about two minutes
    .venv/bin/python benchmarks/api_throughput.py --quick    # fewer requests

Writes ``benchmarks/results/api_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.battery import load_battery  # noqa: E402
from provenance.collect import collect  # noqa: E402
from provenance.models import load_model  # noqa: E402
from provenance.store import Store  # noqa: E402


def make_battery(folder: Path, n_prompts: int, samples: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "battery.yaml").write_text(yaml.safe_dump({
        "name": "throughput", "version": "0.0.1", "description": "synthetic prompts for the throughput benchmark",
        "scorer": "self_id", "prompts": "prompts.jsonl",
        "generation": {"samples": samples, "temperature": 0.8, "top_p": 1.0, "max_new_tokens": 32}}))
    with open(folder / "prompts.jsonl", "w") as f:
        for i in range(n_prompts):
            f.write(json.dumps({"id": f"tp-{i:04d}", "text": f"Question number {i}: who made you?", "language": "en"}) + "\n")
    return folder


def start_server(tmp: Path, latency: float, fault_rate: float) -> tuple[subprocess.Popen, str]:
    ready = tmp / f"ready-{time.time_ns()}"
    cmd = [sys.executable, "-m", "provenance.testing.server", "--model", "bench=mock/bench", "--latency", str(latency),
           "--ready-file", str(ready), "--batch-window", "0.002"]
    if fault_rate:
        cmd += ["--fault-rate", str(fault_rate), "--fault-kinds", "429,500,503,reset", "--retry-after", "0.05"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not ready.exists():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"server did not start: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.05)
    return proc, ready.read_text()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(tmp: Path, *, latency: float, concurrency: int, n_prompts: int, samples: int, fault_rate: float) -> dict:
    proc, base_url = start_server(tmp, latency, fault_rate)
    try:
        battery = load_battery(make_battery(tmp / f"battery-{n_prompts}-{samples}", n_prompts, samples))
        model = load_model("openai/bench", base_url=base_url, max_concurrency=concurrency, backoff_initial=0.05,
                           backoff_max=1.0, timeout=10.0)
        store_path = tmp / f"store-{time.time_ns()}.sqlite"
        with Store(store_path) as store:
            server_cpu0, t0, cpu0 = _cpu_seconds(proc.pid), time.perf_counter(), time.process_time()
            stats = collect({"bench": model}, [battery], store, seed=0, progress=False)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            server_cpu = _cpu_seconds(proc.pid) - server_cpu0
            n = store.count()
            log = store.request_log()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bound = concurrency / latency if latency else float("inf")
    rate = n / seconds
    return {"latency_s": latency, "concurrency": concurrency, "fault_rate": fault_rate, "answers": n,
            "http_calls": len(log), "retries": stats.retries, "seconds": round(seconds, 3),
            "answers_per_s": round(rate, 2), "bound_per_s": round(bound, 2),
            "fraction_of_bound": round(rate / bound, 4), "peak_in_flight": stats.peak_in_flight,
            "client_cpu_ms_per_answer": round(1000 * cpu / n, 3), "server_cpu_ms_per_answer": round(1000 * server_cpu / n, 3),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
            "failed": stats.failed}


def run_bare(tmp: Path, *, latency: float, concurrency: int, n: int, client: str) -> dict:
    """The same calls from a bare ``client`` ("aiohttp" or "httpx"; no retries, store or
    evidence log): what that HTTP stack and the loopback server reach on this machine."""
    import asyncio

    proc, base_url = start_server(tmp, latency, 0.0)

    def body(i: int) -> dict:
        return {"model": "bench", "messages": [{"role": "user", "content": f"Question number {i}: who made you?"}],
                "max_tokens": 32, "temperature": 0.8, "seed": i}

    async def with_aiohttp() -> float:
        import aiohttp

        sem = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=concurrency)) as s:
            async def one(i: int) -> None:
                async with sem:
                    async with s.post(f"{base_url}/chat/completions", json=body(i)) as r:
                        r.raise_for_status()
                        await r.json()

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return time.perf_counter() - t0

    async def with_httpx() -> float:  # one single-connection client per slot: httpx's pool scan is slower
        import httpx

        free: asyncio.Queue = asyncio.Queue()
        clients = [httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=1))
                   for _ in range(concurrency)]
        for c in clients:
            free.put_nowait(c)

        async def one(i: int) -> None:
            c = await free.get()
            try:
                r = await c.post("/chat/completions", json=body(i))
                r.raise_for_status()
                r.json()
            finally:
                free.put_nowait(c)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        seconds = time.perf_counter() - t0
        for c in clients:
            await c.aclose()
        return seconds

    try:
        cpu0 = time.process_time()
        seconds = asyncio.run(with_aiohttp() if client == "aiohttp" else with_httpx())
        cpu = time.process_time() - cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bound = concurrency / latency
    return {"client": f"bare {client} (no retries, store or log)", "library": client,
            "version": _version(client), "latency_s": latency, "concurrency": concurrency,
            "fault_rate": 0.0, "answers": n, "seconds": round(seconds, 3), "answers_per_s": round(n / seconds, 2),
            "bound_per_s": round(bound, 2), "fraction_of_bound": round(n / seconds / bound, 4),
            "client_cpu_ms_per_answer": round(1000 * cpu / n, 3), "load_avg_1m_after": round(os.getloadavg()[0], 2)}


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "api_throughput.json"))
    a = ap.parse_args()
    n_prompts = 200 if a.quick else 480
    load0 = os.getloadavg()[0]  # before the run's own load
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        repeats = [run(tmp, latency=0.2, concurrency=32, n_prompts=n_prompts, samples=4, fault_rate=0.0)
                   for _ in range(1 if a.quick else 3)]
        for r in repeats:
            print(json.dumps(r))
        clean = sorted(repeats, key=lambda r: r["fraction_of_bound"])[len(repeats) // 2]  # the median run
        clean = {**clean, "repeats_fraction_of_bound": [r["fraction_of_bound"] for r in repeats]}
        results.append(clean)
        faulty = run(tmp, latency=0.2, concurrency=32, n_prompts=n_prompts, samples=4, fault_rate=0.2)
        print(json.dumps(faulty))
        results.append(faulty)
        # what this machine can do at all right now: no injected latency, same concurrency
        # (client and server share its cores with whatever else runs)
        sat = run(tmp, latency=0.0, concurrency=32, n_prompts=n_prompts, samples=4, fault_rate=0.0)
        sat["bound_per_s"] = sat["fraction_of_bound"] = None
        print(json.dumps(sat))
        results.append(sat)
        bare = {}
        for client in ("aiohttp", "httpx"):
            bare[client] = run_bare(tmp, latency=0.2, concurrency=32, n=n_prompts * 4, client=client)
            print(json.dumps(bare[client]))
    doc = {"benchmark": "api_throughput", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_1m": load0},
           "description": "answers/s collected by the audit path from the loopback server with 200 ms injected "
                          "latency and 32 concurrent requests; bound = concurrency / latency. The last row has no "
                          "injected latency: the most this machine gave client and server together at the time; "
                          "where it is below the bound, the bound could not be reached on it",
           "client": {"library": "aiohttp", "version": _version("aiohttp")},
           "results": results, "bare_clients": bare}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
