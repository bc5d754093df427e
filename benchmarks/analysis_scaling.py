"""Analysis cost and scaling: a large stored audit re-analysed from its store, as ``provenance report`` does.

A synthetic audit is written as a real audit directory: ``audit.json`` (the spec) and a real
SQLite store (``provenance.store.Store``) holding every answer of 20 ``mock/`` models (a
candidate that took half its habits from reference 1, two references, 17 controls) to three
batteries of N prompts with 5 samples each. The batteries are real battery directories scored
by the shipped scorers: ``quirks`` (a number or a colour/animal pick), ``self_id`` (a
first-person maker claim, or none) and ``ngram`` (40-60 words from a 3,000-word vocabulary,
each model with its own word preferences). Each model has habits of its own; the candidate
mixes reference 1's into its own.

The analysis is then timed in a fresh subprocess per audit (so sizes do not pollute each
other), through the real entry point of ``provenance report``
(``provenance.audit.run_audit(spec, dir, collect_missing=False)``: load from the store,
score, statistics with ``--resamples`` (10,000) cluster-bootstrap replicates, battery
statistics, evidence, report.json/.md/.html, scores.csv), with its phases timed inside it,
and the process's peak memory read from the kernel (``ru_maxrss`` of that child).

1. **Headline**: 1,000 prompts x 5 samples x 20 models x 3 batteries, 10,000 resamples
   (target: under 10 s).
2. **Scaling**: an audit of the zoo audit's shape (a candidate, 2 references, 3 controls; 5
   samples, 3 batteries) at 100 ... 10,000 prompts (``--sizes``); seconds and peak memory per
   size, and the slope of log time on log prompts (1 is linear).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/analysis_scaling.py`` (on 2 shared cores the headline
took about 70 s and 0.65 GB, down from 4 minutes and 3.6 GB before pair scoring was vectorised and the
bootstrap chunked; the 10,000-prompt audit, 900,000 answers, about 4.5 minutes and 1.6 GB (2.4 GB before the
distinctive n-gram tables were made sparse); the whole run some 10 minutes: each child may use at most 3/4 of the
machine's memory, and a size that fails is recorded as failed). ``--quick``: 100 prompts for the headline,
sizes 50, 100, 200, 1,000 resamples. Writes ``benchmarks/results/analysis_scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "results" / "analysis_scaling.json"
TARGET_S = 10.0
TARGET_MB = 1024.0
SAMPLES = 5
COLOURS = ["red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white", "teal", "gold"]
ANIMALS = ["dog", "cat", "horse", "tiger", "eagle", "whale", "rabbit", "fox", "otter", "owl", "bear", "wolf"]
MAKERS = ["OpenAI", "Anthropic", "Google", "Meta", "Mistral AI", "Alibaba", "DeepSeek", "Microsoft", "Cohere",
          "Baidu"]


def roles(n_models: int) -> tuple[str, list[str], list[str]]:
    return "student", ["teacher-1", "teacher-2"], [f"control-{i:02d}" for i in range(1, n_models - 2)]


# -- building the synthetic audit ----------------------------------------------------------------

def write_batteries(root: Path, n: int) -> list[Path]:
    """Three battery directories of n prompts each."""
    dirs = []
    specs = {
        "syn_quirks": ("quirks", 4, lambda i: (
            {"id": f"q{i:05d}", "text": f"Choose a whole number between 1 and 10. (variant {i})", "language": "en",
             "normaliser": "number", "range": [1, 10]} if i % 3 == 0 else
            {"id": f"q{i:05d}", "text": f"Pick any {'colour' if i % 3 == 1 else 'animal'}. (variant {i})",
             "language": "en", "normaliser": "choice", "category": "colour" if i % 3 == 1 else "animal"})),
        "syn_self_id": ("self_id", 2, lambda i: {"id": f"s{i:05d}", "text": f"Who made you? (variant {i})",
                                                 "language": "en"}),
        "syn_ngram": ("ngram", 2, lambda i: {"id": f"g{i:05d}", "text": f"Explain topic number {i} briefly.",
                                             "language": "en"}),
    }
    for name, (scorer, _, make) in specs.items():
        d = root / "batteries" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "battery.yaml").write_text(
            f"name: {name}\nversion: \"1\"\ndescription: synthetic {scorer} battery for analysis_scaling.py\n"
            f"scorer: {scorer}\ngeneration:\n  samples: {SAMPLES}\n  temperature: 0.8\n  top_p: 1.0\n"
            f"  max_new_tokens: 64\nprompts: prompts.jsonl\n")
        with open(d / "prompts.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps(make(i)) + "\n")
        dirs.append(d)
    return dirs


def _mix(own: np.ndarray, ref: np.ndarray | None, lam: float) -> np.ndarray:
    return own if ref is None else (1 - lam) * own + lam * ref


def answers(kind: str, labels: list[str], n: int, g: np.random.Generator, lam: float = 0.5) -> dict[str, list[list[str]]]:
    """label -> per prompt -> SAMPLES texts. ``student`` mixes teacher-1's habits into its own."""
    out: dict[str, list[list[str]]] = {}
    if kind == "syn_quirks":
        A = 12
        base = g.dirichlet(np.ones(A), size=n)
        probs = {m: np.vstack([g.dirichlet(3 * b + 0.05) for b in base]) for m in labels}
        probs["student"] = _mix(probs["student"], probs["teacher-1"], lam)
        for m in labels:
            cum = probs[m].cumsum(axis=1)
            picks = (g.random((n, SAMPLES, 1)) > cum[:, None, :]).sum(axis=2).clip(0, A - 1)
            rows = []
            for i in range(n):
                if i % 3 == 0:
                    rows.append([f"My pick is {1 + int(k) % 10}." for k in picks[i]])
                else:
                    words = COLOURS if i % 3 == 1 else ANIMALS
                    rows.append([f"I would choose {words[int(k)]}, it is a fine one." for k in picks[i]])
            out[m] = rows
    elif kind == "syn_self_id":
        own = {m: g.dirichlet(np.full(len(MAKERS) + 1, 0.3)) for m in labels}
        own["student"] = _mix(own["student"], own["teacher-1"], lam)
        for m in labels:
            picks = g.choice(len(MAKERS) + 1, size=(n, SAMPLES), p=own[m] / own[m].sum())
            out[m] = [["I am a helpful assistant, here to answer questions." if k == len(MAKERS) else
                       f"I am an AI assistant created by {MAKERS[k]}." for k in row] for row in picks]
    else:
        V = 3000
        vocab = np.array([f"w{j}" for j in range(V)])
        zipf = 1.0 / np.arange(1, V + 1)
        pref = {m: zipf * np.exp(g.normal(0, 1.2, V)) for m in labels}
        pref["student"] = _mix(pref["student"] / pref["student"].sum(), pref["teacher-1"] / pref["teacher-1"].sum(),
                               lam)
        for m in labels:
            p = pref[m] / pref[m].sum()
            lengths = g.integers(40, 61, size=(n, SAMPLES))
            words = g.choice(V, size=(n, SAMPLES, 60), p=p)
            out[m] = [[" ".join(vocab[words[i, s, :lengths[i, s]]]) for s in range(SAMPLES)] for i in range(n)]
    return out


def build_audit(root: Path, n: int, n_models: int, seed: int, n_resamples: int) -> dict:
    """Write batteries, a store full of answers and audit.json under ``root``; returns info."""
    from provenance.audit import SPEC_FILE, make_spec
    from provenance.battery import load_battery
    from provenance.models import load_model
    from provenance.models.base import Completion
    from provenance.store import Store

    t0 = time.perf_counter()
    cand, refs, ctls = roles(n_models)
    labels = [cand, *refs, *ctls]
    dirs = write_batteries(root, n)
    models = {m: load_model(f"mock/{m}") for m in labels}
    g = np.random.default_rng(seed)
    rows_written = 0
    with Store(root / "store.sqlite") as store:
        for d in dirs:
            b = load_battery(d)
            sampling = b.generation.sampling
            texts = answers(b.name, labels, n, g)
            hashes = [b.prompt_hash(p) for p in b.prompts]
            for m in labels:
                key = models[m].key(sampling)
                store.register_model(key, models[m].identity(), sampling.model_dump())
                rows = [(hashes[i], p.id, s, p.text, s, Completion(text=texts[m][i][s], tokens_in=8,
                                                                      tokens_out=len(texts[m][i][s].split())))
                        for i, p in enumerate(b.prompts) for s in range(SAMPLES)]
                rows_written += store.put_many(key, rows)
    spec = make_spec({"candidate": f"mock/{cand}", "references": [f"mock/{r}" for r in refs],
                      "controls": [f"mock/{c}" for c in ctls], "batteries": [str(d) for d in dirs], "seed": 0,
                      "n_resamples": n_resamples, "store": str(root / "store.sqlite")})
    (root / SPEC_FILE).write_text(spec.model_dump_json(indent=1) + "\n")
    return {"rows": rows_written, "build_seconds": round(time.perf_counter() - t0, 2),
            "store_mb": round((root / "store.sqlite").stat().st_size / 2 ** 20, 1)}


# -- the timed analysis (run in its own process) -------------------------------------------------

def analyse_worker(audit_dir: Path) -> dict:
    """``provenance report``'s path on the audit in ``audit_dir``, with its phases timed."""
    t_start = time.perf_counter()
    import provenance.analysis as an
    import provenance.report as rep
    import provenance.scorers.battery_stats as bs
    from provenance.audit import load_audit_dir, run_audit
    from provenance.stats.excess import ScoreTable

    t_import = time.perf_counter() - t_start
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    phases: dict[str, float] = {}
    scoring = [0.0]

    def timed(mod, name, label):
        fn = getattr(mod, name)

        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - t
        setattr(mod, name, wrapper)

    orig_s, orig_c = ScoreTable.s, ScoreTable.ceiling

    def s(self, a, b):
        if tuple(sorted((a, b))) in self._pairs:
            return orig_s(self, a, b)
        t = time.perf_counter()
        try:
            return orig_s(self, a, b)
        finally:
            scoring[0] += time.perf_counter() - t

    def ceiling(self, a):
        if a in self._selfs:
            return orig_c(self, a)
        t = time.perf_counter()
        try:
            return orig_c(self, a)
        finally:
            scoring[0] += time.perf_counter() - t

    ScoreTable.s, ScoreTable.ceiling = s, ceiling
    timed(an, "load_battery_data", "load (store + features)")
    timed(an, "evidence", "evidence")
    timed(an, "report_sections", "statistics (report_sections)")
    timed(bs, "battery_statistics", "battery statistics")
    timed(rep, "write_report", "write report.json/.md/.html")
    spec = load_audit_dir(audit_dir)
    t0 = time.perf_counter()
    report = run_audit(spec, audit_dir, progress=False, collect_missing=False)
    total = time.perf_counter() - t0
    # the statistics alone: report_sections' time less the pair scoring done inside it
    stats_only = None
    if "statistics (report_sections)" in phases:
        stats_only = phases["statistics (report_sections)"]
    return {"seconds": round(total, 3), "import_seconds": round(t_import, 3),
            "phases_inclusive": {k: round(v, 3) for k, v in phases.items()},
            "pair_scoring_seconds": round(scoring[0], 3), "statistics_seconds_inclusive": stats_only,
            "rss_after_import_mb": round(rss_import, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "n_results": len(report["results"]), "n_resamples": report["statistics"]["n_resamples"]}


def statistics_worker(audit_dir: Path, n_resamples: int) -> dict:
    """The statistics alone (analyse() on tables whose pair scores are computed beforehand)."""
    from provenance.analysis import analyse, load_battery_data
    from provenance.audit import build_models, load_audit_dir
    from provenance.battery import resolve_batteries
    from provenance.store import Store

    spec = load_audit_dir(audit_dir)
    models, roles_, _ = build_models(spec)
    cand = next(k for k, v in roles_.items() if v == "candidate")
    refs = [k for k, v in roles_.items() if v == "reference"]
    ctls = [k for k, v in roles_.items() if v == "control"]
    with Store(spec.store) as store:
        datas = [load_battery_data(b, models, store) for b in resolve_batteries(spec.batteries, models)]
    t = time.perf_counter()
    for d in datas:
        tab = d.table()
        pool = [cand, *ctls]
        for i, a in enumerate(pool):
            for r in refs:
                tab.s(a, r)
            for b in pool[i + 1:]:
                tab.s(a, b)
        for r in refs:
            tab.ceiling(r)
    scoring = time.perf_counter() - t
    t = time.perf_counter()
    analyse(datas, cand, refs, ctls, n_resamples=n_resamples, seed=0)
    return {"pair_scoring_seconds": round(scoring, 3), "statistics_seconds": round(time.perf_counter() - t, 3)}


def _memory_cap() -> None:
    """In the child: cap its address space at 3/4 of the machine's memory, so that a size too
    large for this machine fails alone (MemoryError) instead of exhausting the machine."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        resource.setrlimit(resource.RLIMIT_AS, (int(total * 0.75), int(total * 0.75)))
    except (ValueError, OSError):
        pass


def run_child(args: list[str]) -> tuple[dict, float, float]:
    """Run this script in a fresh process; (its JSON answer, wall seconds, peak RSS MB)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, env=env, cwd=ROOT,
                         preexec_fn=_memory_cap)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child {' '.join(args)} failed")
    return json.loads(out.decode().strip().splitlines()[-1]), wall, ru.ru_maxrss / 1024


def measure(root: Path, n: int, n_models: int, seed: int, B: int, stats_alone: bool) -> dict:
    d = root / f"n{n}"
    info, build_wall, build_rss = run_child(["--build", str(d), "--n", str(n), "--models", str(n_models),
                                             "--seed", str(seed), "--resamples", str(B)])
    res, wall, rss = run_child(["--analyse", str(d)])
    row = {"n_prompts": n, "models": n_models, "samples": SAMPLES, "batteries": 3, "answers": info["rows"],
           "store_mb": info["store_mb"], "build_seconds": info["build_seconds"], "n_resamples": B,
           "seconds": res["seconds"], "process_seconds": round(wall, 3), "peak_rss_mb": round(rss, 1),
           **{k: v for k, v in res.items() if k not in ("seconds", "peak_rss_mb")}}
    if stats_alone:
        s, _, _ = run_child(["--statistics", str(d), "--resamples", str(B)])
        row["statistics_alone"] = s
    shutil.rmtree(d, ignore_errors=True)
    print(f"  {n:6d} prompts: {row['seconds']:8.2f} s (scoring {row['pair_scoring_seconds']:.2f} s, load "
          f"{row['phases_inclusive'].get('load (store + features)', 0):.2f} s), peak {row['peak_rss_mb']:.0f} MB"
          + (f"; statistics alone {row['statistics_alone']['statistics_seconds']:.2f} s" if stats_alone else ""),
          flush=True)
    return row


def slope(xs, ys) -> float | None:
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI: headline at 200 prompts, sizes 50-200, 1,000 resamples")
    ap.add_argument("--n-prompts", type=int, default=1000, help="prompts of the headline audit")
    ap.add_argument("--models", type=int, default=20, help="models of the headline audit")
    ap.add_argument("--scaling-models", type=int, default=6,
                    help="models of the scaling audits (6: a candidate, 2 references, 3 controls, as the zoo audit)")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000, 10000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    # internal: the child processes
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--analyse", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--statistics", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.build:
        print(json.dumps(build_audit(a.build, a.n, a.models, a.seed, a.resamples)))
        return 0
    if a.analyse:
        print(json.dumps(analyse_worker(a.analyse)))
        return 0
    if a.statistics:
        print(json.dumps(statistics_worker(a.statistics, a.resamples)))
        return 0
    if a.quick:
        a.n_prompts, a.resamples, a.sizes = 100, 1000, [50, 100, 200]
    start = time.time()
    work = a.work or Path(tempfile.mkdtemp(prefix="provenance-scaling-"))
    try:
        print(f"headline: {a.n_prompts} prompts x {SAMPLES} samples x {a.models} models x 3 batteries, "
              f"{a.resamples} resamples", flush=True)
        head = measure(work, a.n_prompts, a.models, a.seed, a.resamples, stats_alone=True)
        print(f"scaling: {a.sizes} prompts", flush=True)
        rows, failed = [], []
        for n in a.sizes:
            if (n, a.scaling_models) == (a.n_prompts, a.models):
                rows.append(head)
                continue
            try:
                rows.append(measure(work, n, a.scaling_models, a.seed, a.resamples, stats_alone=False))
            except RuntimeError as e:  # e.g. more memory than this machine has
                print(f"  {n:6d} prompts: failed ({e})", flush=True)
                failed.append({"n_prompts": n, "error": str(e)})
                shutil.rmtree(work / f"n{n}", ignore_errors=True)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    sizes = [r["n_prompts"] for r in rows]
    secs = [r["seconds"] for r in rows]
    big = [(n, s) for n, s in zip(sizes, secs) if n >= 1000] or list(zip(sizes, secs))
    result = {
        "benchmark": "analysis_scaling",
        "what": "a synthetic stored audit re-analysed through provenance report's entry point (run_audit with "
                "collect_missing=False): load, score, statistics, battery statistics, evidence, report files",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": a.quick,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "gpu": None,
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "settings": {"models": a.models, "scaling_models": a.scaling_models,
                     "roles": "1 candidate (half of reference 1's habits), 2 references, the rest controls",
                     "samples": SAMPLES, "batteries": ["quirks", "self_id", "ngram"],
                     "n_resamples": a.resamples, "seed": a.seed},
        "headline": {"what": f"{a.n_prompts} prompts x {SAMPLES} samples x {a.models} models x 3 batteries",
                     "n_prompts": a.n_prompts, "n_resamples": a.resamples, "seconds": head["seconds"],
                     "statistics_seconds": head["statistics_alone"]["statistics_seconds"],
                     "pair_scoring_seconds": head["pair_scoring_seconds"],
                     "phases_inclusive": head["phases_inclusive"], "peak_rss_mb": head["peak_rss_mb"],
                     "target_seconds": TARGET_S},
        "scaling": {"what": f"{a.scaling_models} models x {SAMPLES} samples x 3 batteries", "sizes": sizes, "seconds": secs, "peak_rss_mb": [r["peak_rss_mb"] for r in rows],
                    "slope": slope(sizes, secs), "slope_from_1000": slope(*zip(*big)) if len(big) >= 2 else None,
                    "target_mb": TARGET_MB},
        "rows": rows, "failed_sizes": failed, "seconds": round(time.time() - start, 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"headline {head['seconds']:.1f} s (target {TARGET_S:.0f} s), statistics alone "
          f"{result['headline']['statistics_seconds']:.1f} s; slope {result['scaling']['slope']}; peak "
          f"{max(result['scaling']['peak_rss_mb']):.0f} MB")
    print(f"wrote {a.out} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
