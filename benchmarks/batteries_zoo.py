"""Each battery alone on the lineage zoo: does it separate a student from the controls?

Three audits against teacher A (and teacher B), with controls 1-3, sharing one store:

- ``seqkd-a`` (trained only on A's sampled answers): every battery should show an excess over
  the controls with its interval above zero;
- ``scrubbed-a`` (A's answers with A's name replaced): self-ID claims of A's maker are gone,
  quirks and n-grams should still separate it;
- ``kd-a`` (logit distillation from A): the white-box battery should separate it.

Per battery and candidate, the excess of similarity to teacher A over the controls (the
leading baseline and scale of the stats layer, with its cluster-bootstrap interval), the same
against teacher B (a non-parent, for contrast), and the battery-specific statistics (the
self-ID claim rate of A's maker, the distinctive n-gram usage, the white-box log-likelihood
margin). ``--languages en`` (the default) runs the English prompts only: the zoo's tiny models
know no other language; ``--languages all`` runs every prompt. The zoo was trained on
explanations, advice and tip lists only, and answers the n-gram battery's writing, coding and
reasoning prompts with stock fall-backs (an identity line, a pick); so the n-gram battery is
also analysed, from the same store, on its ``explanation`` and ``advice`` prompts
(``ngram[language=en,area=explanation|advice]``, reported as ``ngram (explanation+advice)``).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/batteries_zoo.py`` (about 10 minutes on 2
cores, most of it generation; a re-run reuses the store). Writes
``benchmarks/results/batteries_zoo.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.analysis import analyse, load_battery_data  # noqa: E402
from provenance.audit import build_models, make_spec, run_audit  # noqa: E402
from provenance.battery import resolve_batteries  # noqa: E402
from provenance.store import Store  # noqa: E402

SUBSETS = {"ngram (explanation+advice)": "ngram[language=en,area=explanation|advice]"}

ZOO = ROOT / "fixtures" / "zoo" / "models"
OUT = ROOT / "benchmarks" / "results" / "batteries_zoo.json"
BATTERIES = ["self_id", "quirks", "ngram", "likelihood"]
CANDIDATES = ["seqkd-a", "scrubbed-a", "kd-a"]


def m(name: str) -> dict:
    return {"model": f"hf/{ZOO / name}", "label": name}


def summary(report: dict) -> dict:
    rows = {}
    for r in report["results"]:
        ex, rk = r.get("excess") or {}, r.get("rank_excess") or {}
        rows.setdefault(r["battery"], {})[r["reference"]] = {
            "similarity": (r.get("similarity") or {}).get("estimate"),
            "excess": ex.get("estimate"), "excess_ci": [ex.get("ci_low"), ex.get("ci_high")],
            "rank_excess": rk.get("estimate"), "rank_excess_ci": [rk.get("ci_low"), rk.get("ci_high")],
            "n_prompts": r.get("n_prompts")}
    extra = {}
    for s in report.get("battery_statistics", []):
        if s["kind"] == "self_id":
            extra[s["battery"]] = {"claim_rates": [{k: v for k, v in c.items() if k in (
                "reference", "maker", "reference_rate", "candidate_rate", "control_rates", "excess", "note")}
                for c in s["claim_rates"]],
                "distribution": [{k: c[k] for k in ("reference", "closeness", "control_closeness", "excess",
                                                     "confidence_interval")} for c in s["distribution"]]}
        elif s["kind"] == "distinctive_ngrams":
            extra[s["battery"]] = [{k: r.get(k) for k in ("reference", "candidate_usage", "control_usage", "excess",
                                                         "n_distinctive", "note")} | {"shared": r.get("shared", [])[:5]}
                                   for r in s["references"]]
        elif s["kind"] == "likelihood":
            extra[s["battery"]] = {"checks": s["checks"], "loglikelihood": s["loglikelihood"],
                                   "next_token_agreement": s["next_token_agreement"]}
    return {"results": rows, "battery_statistics": extra}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--work", type=Path, default=Path("/tmp/provenance-batteries-zoo"))
    ap.add_argument("--languages", choices=["en", "all"], default="en")
    ap.add_argument("--resamples", type=int, default=1999)
    ap.add_argument("--candidates", nargs="*", default=CANDIDATES)
    ap.add_argument("--readme-only", action="store_true", help="rewrite the README tables from --out, computing nothing")
    a = ap.parse_args(argv)
    if a.readme_only:
        write_readmes(json.loads(a.out.read_text()))
        return 0
    warnings.simplefilter("ignore")
    bats = [f"{b}[language=en]" if a.languages == "en" else b for b in BATTERIES]
    a.work.mkdir(parents=True, exist_ok=True)
    out = {"what": "each battery alone on the zoo: excess over controls 1-3 against teacher A (and B)",
           "languages": a.languages, "batteries": bats, "n_resamples": a.resamples, "seed": 0, "candidates": {}}
    start = time.time()
    for cand in a.candidates:
        t0 = time.time()
        spec = make_spec({"candidate": m(cand), "references": [m("teacher-a"), m("teacher-b")],
                          "controls": [m("control-1"), m("control-2"), m("control-3")], "batteries": bats,
                          "seed": 0, "n_resamples": a.resamples, "store": str(a.work / "store.sqlite")})
        report = run_audit(spec, a.work / cand, progress=False)
        out["candidates"][cand] = summary(report) | {"seconds": round(time.time() - t0, 1)}
        models, _, _ = build_models(spec)
        with Store(a.work / "store.sqlite") as store:
            for label, name in SUBSETS.items():
                (b,) = resolve_batteries([name])
                st = analyse([load_battery_data(b, models, store)], cand, ["teacher-a", "teacher-b"],
                             ["control-1", "control-2", "control-3"], n_resamples=a.resamples, seed=0)
                out["candidates"][cand]["results"][label] = {r.reference: {
                    "similarity": r.similarity.estimate, "excess": r.excess.estimate,
                    "excess_ci": list(r.excess.confidence_interval), "rank_excess": r.rank_excess.estimate,
                    "rank_excess_ci": list(r.rank_excess.confidence_interval), "n_prompts": r.n_prompts}
                    for r in st.results}
        for bat, refs in out["candidates"][cand]["results"].items():
            r = refs.get("teacher-a", {})
            ci = r.get("excess_ci") or [None, None]
            rci = r.get("rank_excess_ci") or [None, None]
            print(f"{cand:11s} {bat:11s} vs teacher-a: excess {r.get('excess')!s:.6} CI [{ci[0]!s:.6}, {ci[1]!s:.6}]"
                  f"  rank excess {r.get('rank_excess')!s:.6} CI [{rci[0]!s:.6}, {rci[1]!s:.6}]", flush=True)
    out["seconds"] = round(time.time() - start, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1, default=str) + "\n")
    write_readmes(out)
    print(f"wrote {a.out} in {out['seconds']} s")
    return 0


BEGIN, END = "<!-- zoo:begin -->", "<!-- zoo:end -->"
README_ROWS = {"self_id": ["self_id"], "quirks": ["quirks"], "ngram": ["ngram", "ngram (explanation+advice)"],
               "likelihood": ["likelihood"]}


def _ci(ci) -> str:
    ci = ci or [None, None]
    return "no interval" if ci[0] is None else f"{ci[0]:.3f} to {ci[1]:.3f}"


def write_readmes(out: dict) -> None:
    """The zoo table of each battery README (between the zoo markers)."""
    for readme, bats in README_ROWS.items():
        path = ROOT / "probes" / readme / "README.md"
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if BEGIN not in text or END not in text:
            continue
        lines = [f"Written by `benchmarks/batteries_zoo.py` ({'English prompts' if out['languages'] == 'en' else 'all prompts'}"
                 f", controls 1-3, {out['n_resamples']} resamples, seed 0). Excess over the controls of the similarity "
                 f"to teacher A (and, for contrast, to teacher B, which none of these learned from), with 95% intervals:",
                 "", "| candidate | prompts | vs teacher A: excess | rank excess | vs teacher B: excess |", "|---|---|---|---|---|"]
        for cand, res in out["candidates"].items():
            for b in bats:
                r = res["results"].get(b, {})
                a, bb = r.get("teacher-a", {}), r.get("teacher-b", {})
                if not a:
                    continue
                lines.append(f"| {cand} | {b} ({a.get('n_prompts')}) | {a['excess']:.3f} ({_ci(a.get('excess_ci'))}) | "
                             f"{a['rank_excess']:.3f} ({_ci(a.get('rank_excess_ci'))}) | "
                             f"{bb.get('excess', float('nan')):.3f} ({_ci(bb.get('excess_ci'))}) |")
        extra = []
        for cand, res in out["candidates"].items():
            st = res["battery_statistics"]
            for b in bats:
                s = st.get(b)
                if not s:
                    continue
                if readme == "self_id":
                    for c in s["claim_rates"]:
                        if c["reference"] == "teacher-a" and c.get("excess"):
                            e = c["excess"]
                            extra.append(f"- {cand}: claims teacher A's maker ({c['maker']}) in {c['candidate_rate']:.0%} "
                                         f"of samples (controls {max(c['control_rates'].values()):.0%} at most); "
                                         f"excess {e['estimate']:.3f} ({_ci([e.get('ci_low'), e.get('ci_high')])}).")
                elif readme == "ngram":
                    for c in s:
                        if c["reference"] == "teacher-a" and c.get("excess"):
                            e = c["excess"]
                            extra.append(f"- {cand}: share of n-gram tokens among teacher A's distinctive n-grams "
                                         f"{c['candidate_usage']:.3f} against the controls' {c['control_usage']:.3f}; "
                                         f"excess {e['estimate']:.3f} ({_ci([e.get('ci_low'), e.get('ci_high')])}); "
                                         f"top shared: " + ", ".join(f'"{g["ngram"]}"' for g in c["shared"][:3]) + ".")
                elif readme == "likelihood":
                    for c in s["loglikelihood"]:
                        if c["reference"] == "teacher-a":
                            e = c["excess"]
                            extra.append(f"- {cand}: mean log-likelihood of teacher A's answers minus the controls' "
                                         f"{e['estimate']:.3f} nats/token ({_ci([e.get('ci_low'), e.get('ci_high')])}).")
                    for c in s["next_token_agreement"]:
                        if c["reference"] == "teacher-a":
                            e = c["excess"]
                            extra.append(f"- {cand}: next-token agreement with teacher A {c['candidate']:.3f} against "
                                         f"{c['controls']:.3f} for the controls; excess {e['estimate']:.3f} "
                                         f"({_ci([e.get('ci_low'), e.get('ci_high')])}).")
        if extra:
            lines += ["", "Battery-specific statistics (`battery_statistics` in report.json), against teacher A:", ""] + extra
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        path.write_text(f"{head}{BEGIN}\n" + "\n".join(lines) + f"\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
