"""Run every benchmark in one command, then print and write the summary of their figures.

    python benchmarks/run.py                  # the full set: results in benchmarks/results/ (hours on 2 cores)
    python benchmarks/run.py --quick          # the CI smoke run: small subsets, few resamples,
                                              # results in benchmarks/results/quick/ (gitignored)
    python benchmarks/run.py --only zoo_detection analysis_scaling   # some of them
    python benchmarks/run.py --summary-only   # no run: the summary again from the result files

Each benchmark is a script of its own (``benchmarks/<name>.py``), run here as a subprocess
with ``OMP_NUM_THREADS=1`` (tiny models on a few cores: one thread per process is fastest and
keeps timings comparable) and its result file read back. The summary is computed from the
result files alone: ``benchmarks/results/summary.json`` and ``benchmarks/SUMMARY.md`` (quick
mode: ``benchmarks/results/quick/``), so no figure in it is ever typed in by hand.

The registry :data:`BENCHMARKS` is a plain list: to add a benchmark, append one
:class:`Benchmark` (its script, arguments for the full and the quick run, its result file, and
a function that turns the result into headline figures with their targets).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
QUICK = RESULTS / "quick"
DATA = ROOT.parent / "shared" / "data"
ZOO = ROOT / "fixtures" / "zoo" / "models"
SUMMARY_MD = BENCH / "SUMMARY.md"
MACHINE = "machine.json"


@dataclass(frozen=True)
class Figure:
    """One headline figure: what, the target (None where the issue sets none), the measured
    value (as shown), and whether the target is met (None: no target, or not measured)."""

    benchmark: str
    figure: str
    measured: str
    target: str | None = None
    met: bool | None = None
    value: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Benchmark:
    """One entry of the registry.

    ``full``/``quick``: the script's arguments in each mode (``{out}`` and ``{tmp}`` are
    replaced by the result file and a scratch folder of that mode); ``quick=None`` leaves the
    benchmark out of quick runs (``why_not_quick`` says why). ``needs``: inputs that must
    exist (else it is skipped, saying which). ``figures``: result dict -> headline figures."""

    name: str
    script: str
    result: str
    full: list[str]
    quick: list[str] | None
    figures: Callable[[dict], list[Figure]]
    what: str = ""
    needs: tuple[Path, ...] = ()
    modules: tuple[str, ...] = ()  # Python packages it needs (else skipped, saying which)
    why_not_quick: str = ""
    timing: bool = False  # its figures are timings: run on an idle machine
    timeout_s: int = 6 * 3600


def fmt(x, nd=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _fig(name, figure, measured, target=None, met=None, value=None, note=None) -> Figure:
    return Figure(name, figure, measured, target, None if met is None else bool(met), value, note)


def binom_consistent(k: int, n: int, p: float = 0.95, alpha: float = 0.05) -> bool:
    """Is k of n intervals holding the truth consistent with nominal coverage p (one-sided
    binomial test of under-coverage at level alpha)?"""
    cdf = sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1))
    return cdf >= alpha


# -- headline figures of each benchmark ----------------------------------------------------------

def coverage_figures(r: dict) -> list[Figure]:
    h = r["headline"]
    out = [_fig("coverage", f"coverage of the leading 95% intervals, min-max over {len(r['n_prompts'])} prompt counts "
                            f"x 2 truths x {len(h['estimands'])} estimands ({r['audits_per_cell']} audits per cell)",
                f"{h['min_coverage']:.3f} to {h['max_coverage']:.3f}", "≥ 0.93 in every cell (nominal 0.95)",
                h["min_coverage"] >= 0.93, h["min_coverage"])]
    eff = [x for x in r.get("rows", []) if x.get("model_effect") and x.get("intervals") == "expand"
           and x.get("truth") == "zero"]
    if eff:
        lo = min(x["coverage"] for x in eff)
        out.append(_fig("coverage", "models with habits of their own (model_effect): share of intervals holding 0, "
                                    "lowest cell", f"{lo:.3f}", "≥ 0.93", lo >= 0.93, lo,
                        "the spread between models is estimated from 3-8 controls" if lo < 0.93 else None))
    return out


def zoo_figures(r: dict) -> list[Figure]:
    h = r["headline"]
    out = []
    for part, label in (("per_battery", "per battery"), ("combined", "combined")):
        x = h["loco"][part]
        out.append(_fig("zoo", f"leave-one-control-out: intervals holding 0, {label}",
                        f"{x['include_zero']}/{x['intervals']}", "consistent with 95% (binomial p ≥ 0.05)",
                        binom_consistent(x["include_zero"], x["intervals"]), x["rate"]))
    out.append(_fig("zoo", "dose series (0-100% teacher A data): Spearman of combined excess against dose",
                    fmt(h["dose_spearman"]), "1.0 (monotone)", h["dose_spearman"] > 0.999, h["dose_spearman"]))
    out.append(_fig("zoo", "known students against null pairs: AUROC of the combined excess",
                    fmt(h["separation_auroc"]), None, None, h["separation_auroc"]))
    return out


def zoo_detection_figures(r: dict) -> list[Figure]:
    n = "zoo_detection"
    out = []
    for row in r["separation"]:
        if row["score"] != r["leading_score"]:
            continue
        out.append(_fig(n, f"derived vs independent pairs ({row['n_derived']} vs {row['n_independent']}), "
                           f"{row['batteries']}: AUROC / TPR at 1% FPR",
                        f"{fmt(row['auroc'])} / {fmt(row['tpr_at_1pct_fpr'], 2)}", None, None, row["auroc"]))
    pc = r["power"]
    for curve in pc["curves"]:
        if curve["batteries"] != "combined":
            continue
        reach = curve.get("n_for_power_0.8")
        out.append(_fig(n, f"power: share of seqkd-a vs teacher-a combined intervals above 0, "
                           f"{curve['samples']} sample(s)/prompt, by prompts "
                           + ", ".join(str(p["n_prompts"]) for p in curve["points"]),
                        " · ".join(fmt(p["power"], 2) for p in curve["points"])
                        + (f" (≥ 0.8 from {reach} prompts)" if reach else " (never ≥ 0.8)"),
                        None, None, reach))
    for s in sorted({c["samples"] for c in pc["curves"]}):
        reach = {c["batteries"]: c.get("n_for_power_0.8") for c in pc["curves"] if c["samples"] == s}
        out.append(_fig(n, f"power: prompts per battery for 80% of intervals above 0, each battery alone, "
                           f"{s} sample(s)/prompt", ", ".join(f"{b} {v or 'never'}" for b, v in reach.items()
                                                             if b != "combined"), None, None))
    for way, x in r["scrubbed_a"].items():
        ci = x["combined_ci"]
        out.append(_fig(n, f"scrubbed-a vs teacher-a, combined excess {way}",
                        f"{fmt(x['combined'])} (95% CI {fmt(ci[0])} to {fmt(ci[1])})",
                        "interval above 0" if "without" in way else None,
                        (ci[0] is not None and ci[0] > 0) if "without" in way else None, x["combined"]))
    return out


def real_pairs_figures(name: str) -> Callable[[dict], list[Figure]]:
    def f(r: dict) -> list[Figure]:
        h = r["headline"]
        nv = h["naive_word3_jaccard"]
        goal = name == "mt_bench"  # the project's goal on MT-bench; Vicuna-bench has too few labelled pairs for one
        out = [_fig(name, f"derived vs independent pairs ({h['n_derived']} vs {h['n_independent']}): AUROC / TPR at "
                          f"1% FPR, leading score (default batteries)",
                    f"{fmt(h['auroc'])} / {fmt(h['tpr_at_1pct_fpr'], 2)}",
                    "AUROC ≥ 0.95 and above the naive baseline" if goal else None,
                    (h["auroc"] >= 0.95 and h["auroc"] > nv["auroc"]) if goal else None, h["auroc"],
                    "the highest-scoring 'independent' pairs involve chatglm-6b (benchmarks/README.md)"
                    if name == "mt_bench" and h["auroc"] < 0.95 else
                    ("3 derived against 7 independent pairs: a small sample" if name == "vicuna_bench" else None)),
               _fig(name, "naive word-3-gram Jaccard, same pairs: AUROC / TPR at 1% FPR",
                    f"{fmt(nv['auroc'])} / {fmt(nv['tpr_at_1pct_fpr'], 2)}", None, None, nv["auroc"])]
        sm = r.get("same_model", {})
        if sm.get("positions_among_labelled_pairs"):
            out.append(_fig(name, f"same-model re-runs: positions among {sm['n_labelled_pairs']} labelled pairs",
                            str(sm["positions_among_labelled_pairs"]), None, None))
        return out
    return f


def batteries_mt_bench_figures(r: dict) -> list[Figure]:
    out = []
    for t in r["table"]:
        if t["statistic"].endswith("; similarity excess") or "excess over controls" in t["statistic"]:
            out.append(_fig("batteries_mt_bench", f"{t['statistic']}: AUROC / TPR at 1% FPR",
                            f"{fmt(t['auroc'])} / {fmt(t['tpr_at_1pct_fpr'], 2)}", None, None, t["auroc"]))
    nv = r["naive_word3_jaccard"]
    out.append(_fig("batteries_mt_bench", "naive word-3-gram Jaccard: AUROC / TPR at 1% FPR",
                    f"{fmt(nv['auroc'])} / {fmt(nv['tpr_at_1pct_fpr'], 2)}", None, None, nv["auroc"]))
    return out


def sweep_figures(r: dict) -> list[Figure]:
    b, wo = r["best"], r["best_without_chatglm-6b"]
    sizes = f"{b['orders'][0]}-{b['orders'][-1]}" if len(b["orders"]) > 1 else f"{b['orders'][0]}"
    variant = f"{b['measure']} of word {sizes}-grams, {b['scale']}"
    pos = r["derived_positions"]
    weak = [p for p in pos if p["independent_pairs_above"] > 10]
    return [_fig("mt_bench_sweep", f"best of {len(r['table'])} per-prompt similarity variants (measure x n-gram orders x "
                                   f"scale): AUROC / TPR at 1% FPR", f"{fmt(b['auroc'])} / {fmt(b['tpr_at_1pct_fpr'], 2)} "
                                   f"({variant}; the worst variant {fmt(r['best_range'][0])})",
                 "≥ 0.95 (the issue's goal)", b["auroc"] >= 0.95, b["auroc"],
                 f"{len(pos) - len(weak)} of {len(pos)} derived pairs have at most 10 of {b['n_independent']} independent "
                 f"pairs above them; {', '.join(p['student'] for p in weak)} have "
                 f"{', '.join(str(p['independent_pairs_above']) for p in weak)}; the top independent pairs pair "
                 f"chatglm-6b with students of ChatGPT"),
            _fig("mt_bench_sweep", "the same best variant without chatglm-6b's pairs: AUROC / TPR at 1% FPR",
                 f"{fmt(wo['auroc'])} / {fmt(wo['tpr_at_1pct_fpr'], 2)} ({wo['n_independent']} independent pairs)",
                 None, None, wo["auroc"])]


def batteries_zoo_figures(r: dict) -> list[Figure]:
    out = []
    for cand, res in r["candidates"].items():
        for bat, refs in res["results"].items():
            a = refs.get("teacher-a") or {}
            ci = a.get("excess_ci") or [None, None]
            if a.get("excess") is None:
                continue
            out.append(_fig("batteries_zoo", f"{cand} vs teacher-a, {bat}: excess (95% CI)",
                            f"{fmt(a['excess'])} ({fmt(ci[0])} to {fmt(ci[1])})", None, None, a["excess"]))
    return out


def generation_figures(r: dict) -> list[Figure]:
    return [_fig("generation_throughput", f"batched ({r['batch_size']}) against per-prompt loop, {r['n_prompts']} "
                                          f"prompts, {r['device']}: speed-up",
                 f"{r['speedup']:.2f}x ({r['batched_answers_per_second']} vs {r['per_prompt_answers_per_second']} "
                 f"answers/s)", "≥ 10x", r["speedup"] >= 10, r["speedup"],
                 f"{r['machine'].get('cpus')} CPUs, torch threads {r['machine'].get('torch_threads')}, GPU "
                 f"{'yes' if r['machine'].get('cuda') else 'none'}" if r["speedup"] < 10 else None),
            _fig("generation_throughput", "identical greedy outputs",
                 f"{r['identical_outputs']}/{r['n_prompts']}", "all", r["identical_fraction"] == 1.0,
                 r["identical_fraction"])]


def api_figures(r: dict) -> list[Figure]:
    out = []
    free = next((x["answers_per_s"] for x in r["results"] if x.get("fraction_of_bound") is None), None)
    for x in r["results"]:
        if x.get("fraction_of_bound") is None:
            out.append(_fig("api_throughput", "no injected latency: answers/s client and server reach together",
                            f"{x['answers_per_s']}/s", None, None, x["answers_per_s"]))
            continue
        clean = not x["fault_rate"]  # the target is for fault-free calls; retries need extra round trips
        out.append(_fig("api_throughput", f"{x['concurrency']} in flight, {x['latency_s'] * 1000:.0f} ms latency, "
                                          f"{x['fault_rate']:.0%} faults: share of the concurrency bound",
                        f"{x['fraction_of_bound']:.1%} ({x['answers_per_s']}/s of {x['bound_per_s']}/s)"
                        + ("" if clean else f", {x['http_calls']} calls for {x['answers']} answers")
                        + (f"; median of {len(x['repeats_fraction_of_bound'])} runs: "
                           f"{', '.join(f'{v:.1%}' for v in x['repeats_fraction_of_bound'])}"
                           if len(x.get("repeats_fraction_of_bound", [])) > 1 else ""),
                        "≥ 90%" if clean else None, x["fraction_of_bound"] >= 0.9 if clean else None,
                        x["fraction_of_bound"], _api_gap(r, free) if clean and x["fraction_of_bound"] < 0.9 else None))
    for name, bare in _bare_clients(r).items():
        use = "the audit path's HTTP stack" if name == "aiohttp" else "the HTTP stack the audit path used before"
        out.append(_fig("api_throughput", f"ceiling: a bare {name} client ({use}), same {bare['concurrency']} calls in "
                                          f"flight and {bare['latency_s'] * 1000:.0f} ms latency, no retries/store/log: "
                                          f"share of the bound",
                        f"{bare['fraction_of_bound']:.1%} ({bare['answers_per_s']}/s, "
                        f"{bare['client_cpu_ms_per_answer']:.1f} ms client CPU per call)", None, None,
                        bare["fraction_of_bound"]))
    return out


def _bare_clients(r: dict) -> dict[str, dict]:
    return r.get("bare_clients", {})


def _api_gap(r: dict, free) -> str:
    why = []
    for name, bare in _bare_clients(r).items():
        why.append(f"a bare {name} client making the same calls with nothing else reached {bare['fraction_of_bound']:.1%} "
                   f"of the bound here ({bare['client_cpu_ms_per_answer']:.1f} ms CPU per call)")
    if why:
        why.append("the HTTP stack and the loopback server share 2 cores; the audit path adds retries, the store "
                   "commit and the evidence log")
    if free is not None:
        why.append(f"without injected latency client and server reached {free}/s together "
                   f"(load average {r.get('machine', {}).get('load_avg_1m', 0):.1f})")
    return "; ".join(why)


def scaling_figures(r: dict) -> list[Figure]:
    h = r["headline"]
    ph = h.get("phases_inclusive", {})
    why = (f"battery statistics {ph.get('battery statistics', 0):.0f} s (distinctive n-grams: a Python loop over "
           f"the n-grams a reference can select), pair scoring {h['pair_scoring_seconds']:.0f} s (vectorised per "
           f"prompt; about half rebuilds n-gram sets from text), loading {ph.get('load (store + features)', 0):.0f} s, "
           f"statistics {ph.get('statistics (report_sections)', 0):.0f} s, report files "
           f"{ph.get('write report.json/.md/.html', 0):.0f} s; the rest is evidence details and scores.csv rows")
    out = [_fig("analysis_scaling", f"re-analysis of a stored audit ({h['what']}) by provenance report's path "
                                    f"(load, score, statistics, battery statistics, evidence, report files), "
                                    f"{h['n_resamples']} resamples: seconds",
                f"{h['seconds']:.1f} s (peak {h['peak_rss_mb']:.0f} MB)", f"< {h['target_seconds']:.0f} s",
                h["seconds"] < h["target_seconds"], h["seconds"], why),
           _fig("analysis_scaling", f"the same audit's statistics alone (every estimate, interval and combination "
                                    f"with {h['n_resamples']} resamples, from ready per-prompt pair scores): seconds",
                f"{h['statistics_seconds']:.1f} s", f"< {h['target_seconds']:.0f} s (the statistics' share)",
                h["statistics_seconds"] < h["target_seconds"], h["statistics_seconds"])]
    s = r["scaling"]
    what = s.get("what", "")
    big = [n for n in s["sizes"] if n >= 1000]
    k = s.get("slope_from_1000") if len(big) >= 2 else s["slope"]
    out.append(_fig("analysis_scaling", f"time against prompts ({what}; {s['sizes'][0]} to {s['sizes'][-1]} prompts): "
                                        f"slope of log time on log prompts"
                                        + (f" from {big[0]} prompts (all sizes: {s['slope']:.2f})" if len(big) >= 2 else ""),
                    f"{k:.2f} (seconds " + ", ".join(f"{x:.1f}" for x in s["seconds"]) + ")",
                    "≈ 1 (0.8 to 1.2: linear)", 0.8 <= k <= 1.2 if k is not None else None,
                    k, "fixed costs (imports, report files) weigh most at few prompts"
                    if k is not None and k < 0.8 else None))
    out.append(_fig("analysis_scaling", f"peak memory (max RSS of the analysing process), {what}, by prompts",
                    ", ".join(f"{x:.0f}" for x in s["peak_rss_mb"]) + " MB", "< 1 GB at every size",
                    max(s["peak_rss_mb"]) < 1024, max(s["peak_rss_mb"]),
                    "measured at 10,000 prompts: every stored answer is held while a battery is analysed (about "
                    "0.6 GB), and the distinctive n-gram statistics build each reference's totals over every "
                    "distinct n-gram it used (about 0.5 GB at a time, 4.7 million n-grams) before keeping the "
                    "selectable ones"
                    if max(s["peak_rss_mb"]) >= 1024 else None))
    for f in r.get("failed_sizes", []):
        out.append(_fig("analysis_scaling", f"{f['n_prompts']} prompts ({what})", "failed: " + f["error"],
                        "runs", False, None, "the analysing process may use at most 3/4 of the machine's memory"))
    return out


def ray_figures(r: dict) -> list[Figure]:
    runs, ratios = r["runs"], r["ratios_to_local"]
    st = r["settings"]
    what = f"{runs['local']['answers']} answers of {Path(st['model']).name}, {r['machine'].get('cpus')} CPUs"
    out = [_fig("ray_executor", f"answers/s start to finish, local · Ray 1 worker · Ray 2 workers ({what})",
                " · ".join(f"{runs[k]['end_to_end_answers_per_second']:.1f}" for k in ("local", "ray-1", "ray-2")),
                None, None, runs["local"]["end_to_end_answers_per_second"],
                f"Ray workers start as new processes importing torch (first batch after "
                f"{runs['ray-1']['first_batch_seconds']:.0f} s with 1 worker); a small job on 2 cores pays that "
                f"start-up" if ratios["ray-1_end_to_end"] < 1 else None),
           _fig("ray_executor", "answers/s once the workers are up, ratio to local: Ray 1 worker · 2 workers",
                f"{ratios['ray-1_steady']:.2f} · {ratios['ray-2_steady']:.2f}", None, None, ratios["ray-1_steady"]),
           _fig("ray_executor", "the Ray executor's answers equal the local executor's",
                "identical" if r["identical_answers"] else "DIFFERENT", "identical", bool(r["identical_answers"]),
                1.0 if r["identical_answers"] else 0.0)]
    return out


def _data(name: str) -> Path:
    return DATA / name


#: The registry, in the order the benchmarks run: analyses from stored answers first, then the
#: timing benchmarks (which want the machine to themselves).
BENCHMARKS: list[Benchmark] = [
    Benchmark("zoo_detection", "zoo_detection.py", "zoo_detection.json",
              ["--out", "{out}"], ["--quick", "--out", "{out}", "--store", "{tmp}/zoo-quick-store.sqlite"],
              zoo_detection_figures, "the zoo: AUROC per battery, power curve, scrubbed-a with and without self-ID",
              needs=(ZOO.parent / "lineage.json",)),
    Benchmark("zoo", "zoo.py", "zoo.json", ["--out", "{out}"],
              ["--quick", "--out", "{out}", "--store", "{tmp}/zoo-quick-store.sqlite"], zoo_figures,
              "the zoo: leave-one-control-out, dose series, students vs null pairs", needs=(ZOO.parent / "lineage.json",)),
    Benchmark("batteries_zoo", "batteries_zoo.py", "batteries_zoo.json", ["--out", "{out}"], None,
              batteries_zoo_figures, "each battery alone on the zoo, white-box battery included",
              needs=(ZOO.parent / "lineage.json",), why_not_quick="runs three full audits with the white-box battery"),
    Benchmark("mt_bench", "mt_bench.py", "mt_bench.json", ["--out", "{out}"],
              ["--out", "{out}", "--resamples", "199"], real_pairs_figures("mt_bench"),
              "real MT-bench transcripts: derived vs independent pairs, naive baseline beside",
              needs=(_data("mt_bench.jsonl.gz"), _data("pairs.json"))),
    Benchmark("vicuna_bench", "mt_bench.py", "vicuna_bench.json", ["--source", "vicuna_bench", "--out", "{out}"],
              ["--source", "vicuna_bench", "--out", "{out}", "--resamples", "199"], real_pairs_figures("vicuna_bench"),
              "real Vicuna-bench transcripts: derived vs independent pairs, naive baseline beside",
              needs=(_data("vicuna_bench.jsonl.gz"), _data("pairs.json"))),
    Benchmark("batteries_mt_bench", "batteries_mt_bench.py", "batteries_mt_bench.json", ["--out", "{out}"], None,
              batteries_mt_bench_figures, "each battery alone on real MT-bench transcripts",
              needs=(_data("mt_bench.jsonl.gz"), _data("pairs.json")),
              why_not_quick="scores seven n-gram and self-ID variants over 36 models (minutes)"),
    Benchmark("mt_bench_sweep", "mt_bench_sweep.py", "mt_bench_sweep.json", ["--out", "{out}"], None,
              sweep_figures, "real MT-bench transcripts: a grid of per-prompt similarity measures, n-gram orders and scales",
              needs=(_data("mt_bench.jsonl.gz"), _data("pairs.json")),
              why_not_quick="36 similarity cubes over 36 models and 160 prompts (about a minute)"),
    Benchmark("coverage", "coverage.py", "coverage.json", ["--out", "{out}"],
              ["--out", "{out}", "--audits", "20", "--resamples", "199", "--jobs", "1"], coverage_figures,
              "coverage of the 95% intervals on synthetic audits", timing=False),
    Benchmark("analysis_scaling", "analysis_scaling.py", "analysis_scaling.json", ["--out", "{out}"],
              ["--quick", "--out", "{out}"], scaling_figures,
              "analysis cost: a stored audit re-analysed, and time and memory as prompts grow", timing=True),
    Benchmark("generation_throughput", "generation_throughput.py", "generation_throughput.json", ["--out", "{out}"],
              ["--quick", "--out", "{out}"], generation_figures,
              "batched local generation against a per-prompt loop", needs=(ZOO / "teacher-a",), timing=True),
    Benchmark("api_throughput", "api_throughput.py", "api_throughput.json", ["--out", "{out}"],
              ["--quick", "--out", "{out}"], api_figures,
              "API collection against the loopback server with injected latency", timing=True),
    Benchmark("ray_executor", "ray_executor.py", "ray_executor.json", ["--out", "{out}"],
              ["--quick", "--out", "{out}"], ray_figures,
              "collection on a local Ray cluster (1 and 2 workers) against the local executor, same answers",
              needs=(ZOO / "teacher-a",), modules=("ray",), timing=True),
]


# -- running ------------------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    try:
        import numpy
        info["numpy"] = numpy.__version__
    except ImportError:
        pass
    try:
        import torch
        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["gpu"] = None
    if not info.get("gpu"):
        info["gpu_note"] = "no accelerator was lent to this run; every figure is from the CPU"
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        info["memory_gb"] = round(int(mem.split()[1]) / 1024 ** 2, 1)
    except (OSError, StopIteration):
        pass
    return info


def run_one(b: Benchmark, quick: bool, results: Path) -> dict[str, Any]:
    """Run one benchmark's script; returns its status entry."""
    args = b.quick if quick else b.full
    if args is None:
        return {"status": "skipped", "why": f"not in quick runs: {b.why_not_quick}"}
    missing = [str(p) for p in b.needs if not p.exists()]
    if missing:
        return {"status": "skipped", "why": f"input absent: {', '.join(missing)}"}
    import importlib.util

    absent = [m for m in b.modules if importlib.util.find_spec(m) is None]
    if absent:
        return {"status": "skipped", "why": f"package absent: {', '.join(absent)} (pip install 'provenance[{absent[0]}]')"}
    out = results / b.result
    tmp = results / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(BENCH / b.script)] + [a.replace("{out}", str(out)).replace("{tmp}", str(tmp))
                                                     for a in args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    print(f"\n=== {b.name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.time()
    before = out.stat().st_mtime if out.exists() else None
    try:
        rc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=b.timeout_s).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    seconds = round(time.time() - t0, 1)
    fresh = out.exists() and out.stat().st_mtime != before
    status = "ok" if rc == 0 and fresh else "failed"
    entry = {"status": status, "returncode": rc, "seconds": seconds, "command": " ".join(
        ["python", f"benchmarks/{b.script}", *[a for a in cmd[2:]]]).replace(str(ROOT) + "/", "")}
    print(f"=== {b.name}: {status} in {seconds} s", flush=True)
    return entry


# -- the summary --------------------------------------------------------------------------------

def collect_figures(results: Path, quick: bool = False) -> tuple[list[Figure], dict[str, dict]]:
    """Headline figures of every registered benchmark whose result file is in ``results``,
    and per benchmark its (logical) result path, run time and date."""
    figures, files = [], {}
    for b in BENCHMARKS:
        p = results / b.result
        if not p.exists():
            files[b.name] = {"result": None}
            continue
        r = json.loads(p.read_text())
        try:
            figs = b.figures(r)
        except (KeyError, TypeError, IndexError, ValueError) as e:
            figs = [_fig(b.name, "(result file not understood)", f"{type(e).__name__}: {e}")]
        figures += figs
        files[b.name] = {"result": f"benchmarks/results/{'quick/' if quick else ''}{b.result}", "seconds": r.get("seconds"),
                         "created": r.get("created") or r.get("created_at"), "quick": r.get("quick"),
                         "machine": r.get("machine")}
    return figures, files


def met_text(m: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "–"}[m]


def render_md(figures: list[Figure], files: dict[str, dict], machine: dict | None, quick: bool) -> str:
    lines = ["# Benchmark summary", "",
             "Generated by `python benchmarks/run.py` (or `--summary-only`) from the result files in "
             f"`benchmarks/results/{'quick/' if quick else ''}`; do not edit by hand. "
             "How each figure is measured: [benchmarks/README.md](README.md).", ""]
    if quick:
        lines += ["**Quick mode** (CI smoke run): small prompt subsets and few resamples. These figures show that "
                  "every benchmark runs, not what it measures.", ""]
    if machine:
        gpu = machine.get("gpu") or f"none ({machine.get('gpu_note', 'none found')})"
        lines += [f"Machine: {machine.get('cpus')} CPUs, {machine.get('memory_gb', '?')} GB, "
                  f"Python {machine.get('python')}, torch {machine.get('torch', '-')}, {machine.get('platform')}; "
                  f"GPU: {gpu}. Load average when the run started: {machine.get('load_avg_1m')}.", ""]
    lines += ["| benchmark | figure | target | measured | met |", "|---|---|---|---|---|"]
    for f in figures:
        note = f" ({f.note})" if f.note and f.met is False else ""
        lines.append(f"| {f.benchmark} | {f.figure} | {f.target or '–'} | {f.measured}{note} | {met_text(f.met)} |")
    missed = [f for f in figures if f.met is False]
    lines += ["", f"Targets: {sum(f.met is True for f in figures)} met, {len(missed)} missed, "
                  f"{sum(f.met is None for f in figures)} figures without a target.", ""]
    lines += ["| benchmark | result file | seconds | written |", "|---|---|---|---|"]
    for name, x in files.items():
        if x["result"] is None:
            lines.append(f"| {name} | (none: not run) | | |")
        else:
            rel = x["result"].removeprefix("benchmarks/")
            lines.append(f"| {name} | [{rel}]({rel}) | {fmt(x.get('seconds'))} | {x.get('created') or '–'} |")
    return "\n".join(lines) + "\n"


def print_table(figures: list[Figure]) -> None:
    w1 = max([len(f.benchmark) for f in figures] + [9])
    print(f"\n{'benchmark':{w1}s}  {'met':4s}  {'measured':38s}  {'target':26s}  figure")
    for f in figures:
        m = {True: "yes", False: "NO", None: "-"}[f.met]
        print(f"{f.benchmark:{w1}s}  {m:4s}  {f.measured[:38]:38s}  {(f.target or '-')[:26]:26s}  {f.figure}")


def summary_markdown(results: Path, quick: bool) -> tuple[str, list[Figure], dict, dict | None]:
    """SUMMARY.md's text from the result files in ``results`` alone (and the figures behind it)."""
    figures, files = collect_figures(results, quick)
    machine_p = results / MACHINE
    machine = json.loads(machine_p.read_text()) if machine_p.exists() else None
    return render_md(figures, files, machine, quick), figures, files, machine


def write_summary(results: Path, quick: bool, runs: dict[str, dict] | None = None) -> str:
    md, figures, files, machine = summary_markdown(results, quick)
    summary_p = results / "summary.json"
    old = json.loads(summary_p.read_text()) if summary_p.exists() else {}
    summary = {"what": "headline figures of every benchmark, computed from the result files by benchmarks/run.py",
               "quick": quick, "machine": machine, "figures": [f.to_dict() for f in figures], "files": files,
               "runs": {**old.get("runs", {}), **(runs or {})},
               "targets": {"met": sum(f.met is True for f in figures), "missed": sum(f.met is False for f in figures),
                           "none": sum(f.met is None for f in figures)}}
    summary_p.parent.mkdir(parents=True, exist_ok=True)
    summary_p.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    md_path = SUMMARY_MD if results.resolve() == RESULTS.resolve() else results / "SUMMARY.md"
    md_path.write_text(md, encoding="utf-8")
    print_table(figures)
    print(f"\nwrote {summary_p} and {md_path}")
    return md


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke run: small subsets, results in results/quick/")
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these ({', '.join(b.name for b in BENCHMARKS)})")
    ap.add_argument("--summary-only", action="store_true", help="run nothing; summarise the existing result files")
    ap.add_argument("--results", type=Path, help="results folder (default: benchmarks/results, quick: .../quick)")
    a = ap.parse_args(argv)
    results = a.results or (QUICK if a.quick else RESULTS)
    known = {b.name for b in BENCHMARKS}
    unknown = [n for n in a.only or [] if n not in known]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    runs: dict[str, dict] = {}
    if not a.summary_only:
        results.mkdir(parents=True, exist_ok=True)
        if a.quick or not a.only:
            (results / MACHINE).write_text(json.dumps(machine_info(), indent=1) + "\n")
        start = time.time()
        for b in BENCHMARKS:
            if a.only and b.name not in a.only:
                continue
            runs[b.name] = run_one(b, a.quick, results)
            if runs[b.name]["status"] == "skipped":
                print(f"=== {b.name}: skipped ({runs[b.name]['why']})", flush=True)
        print(f"\nall done in {time.time() - start:.0f} s")
        for name, r in runs.items():
            print(f"  {name:22s} {r['status']:8s} {r.get('seconds', '')!s:>8s}  {r.get('why', '')}")
    write_summary(results, a.quick, runs)
    return 1 if any(r["status"] == "failed" for r in runs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
