"""The notebook API: load an audit (or a pool comparison), get pandas frames and plotly figures.

    import provenance.notebook as pn

    a = pn.load("audits/zoo")          # an Audit; displays itself in Jupyter
    a.estimates()                      # one row per estimate: battery, reference, model, quantity, CI ...
    a.combined()                       # per reference, the excess combined over batteries
    a.scores()                         # every per-prompt pair score (scores.csv)
    a.excess_by_prompt("quirks", "teacher-a")   # per prompt: similarity, baseline, excess
    a.claims(); a.quirk_answers(); a.shared_ngrams(); a.evidence(); a.usage()
    a.figures()                        # every chart of report.html, by name
    a.forest("self_id"); a.self_id(); a.quirks(); a.ngrams(); a.combined_plot()

    a = pn.audit(candidate="hf/...", references=[...], controls=[...], out="audits/x")  # run one
    p = pn.compare({"label": "model string", ...}, out="audits/pool")                  # pool mode
    p.pairs(); p.matrix(); p.rankings(); p.heatmap(); p.claims()

Everything reads the audit directory (report.json, scores.csv, the store); nothing here asks
a model anything, except :func:`audit` and :func:`compare`, which run one. The figures are
the ones report.html draws (:mod:`provenance.report.figures`), so a notebook and the report
always show the same thing. Frames need pandas (the ``notebooks`` or ``dev`` extra).
"""

from __future__ import annotations

import html as _html
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from .report import figures as F

__all__ = ["Audit", "Pool", "audit", "compare", "load"]

QUANTITIES = ("similarity", "baseline", "excess", "rank_excess", "ceiling", "normalised")


def _pd():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("the notebook API needs pandas: pip install 'provenance[notebooks]'") from None
    return pd


def _est_row(est: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("estimate", "ci_low", "ci_high", "standard_error", "confidence_level", "n_prompts", "method")
    return {k: (est or {}).get(k) for k in keys}


def load(path: str | Path) -> "Audit | Pool":
    """The audit or pool comparison written into ``path`` (its report.json decides which)."""
    p = Path(path)
    src = p / "report.json" if p.is_dir() else p
    report = json.loads(src.read_text(encoding="utf-8"))
    cls = Pool if report.get("kind") == "compare" else Audit
    return cls(src.parent, report)


def audit(candidate: str, references: list[str] | str, controls: list[str] | str = (), *, out: str | Path,
          batteries: list[str] | None = None, progress: bool = False, **settings) -> "Audit":
    """Run an audit (collecting only what the store lacks) and return it loaded. ``settings``
    are the audit file's other keys: samples, seed, n_resamples, confidence_level, store."""
    from .audit import make_spec, run_audit

    data: dict[str, Any] = {"candidate": candidate, "references": references, "controls": list(controls) or [],
                            **settings}
    if batteries:
        data["batteries"] = list(batteries)
    run_audit(make_spec(data, where="notebook"), out, progress=progress)
    return load(out)


def compare(models: dict[str, str], *, out: str | Path, progress: bool = False, **settings) -> "Pool":
    """Run a pool comparison (``provenance compare``) and return it loaded."""
    from .compare import run_compare

    run_compare(models, out, progress=progress, **settings)
    return load(out)


class _View:
    def __init__(self, directory: Path, report: dict[str, Any]):
        self.directory = Path(directory)
        self.report = report

    @property
    def models(self) -> list[str]:
        return [m["label"] for m in self.report["models"]]

    @property
    def caveats(self) -> list[str]:
        return list(self.report["caveats"])

    def _store_path(self) -> Path:
        return self.directory / "store.sqlite"

    def _battery_datas(self, model_strings: dict[str, str], batteries: list[str], samples: int | None):
        """BatteryData per battery, read from the store (no model is asked anything)."""
        from .analysis import load_battery_data
        from .battery import resolve_batteries
        from .models import load_model
        from .store import Store

        models = {label: load_model(s) for label, s in model_strings.items()}
        try:
            bats = resolve_batteries(batteries, models)
            with Store(self._store_path()) as store:
                return [load_battery_data(b, models, store, samples=samples) for b in bats]
        finally:
            for m in models.values():
                m.close()

    def _claims_frame(self, details: list[dict[str, Any]]):
        rows = [{"battery": d["battery"], "model": c["model"], "language": c["language"], "claim": k, "count": v,
                 "responses": c["responses"], "share": v / c["responses"] if c["responses"] else None}
                for d in details if d["kind"] == "self_id" for c in d["claims"] for k, v in c["counts"].items()]
        return _pd().DataFrame(rows, columns=["battery", "model", "language", "claim", "count", "responses", "share"])

    def _claims_table(self, details):
        """Wide self-ID table: one row per model and language, the top claim and its share."""
        df = self._claims_frame(details)
        if df.empty:
            return df
        top = df.sort_values(["battery", "model", "language", "count"], ascending=[True, True, True, False])
        top = top.groupby(["battery", "model", "language"], sort=False).head(1)
        return top.rename(columns={"claim": "top_claim", "share": "top_share"})[
            ["battery", "model", "language", "top_claim", "top_share", "responses"]].reset_index(drop=True)


class Audit(_View):
    """One audit directory: its report (``.report``, the dict of report.json), frames and figures."""

    # -- frames ------------------------------------------------------------------------------
    @property
    def candidate(self) -> str:
        return self.report["audit"]["candidate"]

    @property
    def references(self) -> list[str]:
        return list(self.report["audit"]["references"])

    @property
    def controls(self) -> list[str]:
        return list(self.report["audit"]["controls"])

    @property
    def roles(self) -> dict[str, str]:
        return {m["label"]: m["role"] for m in self.report["models"]}

    def estimates(self):
        """One row per estimate: the candidate's (model = candidate) and each control's own
        (leave-one-out) similarity, baseline, excess, rank excess, ceiling and normalised score."""
        rows = []
        for r in self.report["results"]:
            for q in QUANTITIES:
                if q in r:
                    rows.append({"battery": r["battery"], "reference": r["reference"], "model": self.candidate,
                                 "role": "candidate", "quantity": q, **_est_row(r[q])})
            for c in r["controls"]:
                for q in ("similarity", "excess", "rank_excess"):
                    if q in c:
                        rows.append({"battery": r["battery"], "reference": r["reference"], "model": c["control"],
                                     "role": "control", "quantity": q, **_est_row(c[q])})
        return _pd().DataFrame(rows)

    def combined(self):
        """Per reference (and per control, leave-one-out): the excess combined over batteries."""
        rows = []
        for c in self.report.get("combined") or []:
            rows.append({"reference": c["reference"], "model": self.candidate, "role": "candidate", "scale": c["scale"],
                         "p_value": (c.get("test") or {}).get("p_value"), **_est_row(c["excess"])})
            rows += [{"reference": c["reference"], "model": k["control"], "role": "control", "scale": c["scale"],
                      "p_value": None, **_est_row(k["excess"])} for k in c["controls"]]
        return _pd().DataFrame(rows)

    def tests(self):
        """Permutation tests per battery and reference (beside the intervals, never a verdict)."""
        rows = [{"battery": r["battery"], "reference": r["reference"], **(r.get("test") or {})}
                for r in self.report["results"]]
        return _pd().DataFrame(rows)

    def scores(self):
        """Every per-prompt score: scores.csv when present, else recomputed from the store."""
        from .audit import SCORES_FILE
        from .report.details import read_scores_csv, score_rows

        path = self.directory / SCORES_FILE
        rows = read_scores_csv(path) if path.exists() else score_rows(self._datas, self.roles)
        df = _pd().DataFrame(rows)
        df["score"] = df["score"].astype(float)
        return df

    @cached_property
    def _datas(self):
        from .audit import load_audit_dir

        spec = load_audit_dir(self.directory)
        strings = {m["label"]: m["model_string"] for m in self.report["models"]}
        return self._battery_datas(strings, list(self.report["audit"]["batteries"]), spec.samples)

    def excess_by_prompt(self, battery: str, reference: str, candidate: str | None = None, side: str = "both"):
        """Per prompt of ``battery``: s(C, R), the baseline from the controls (``side``:
        reference, candidate or both) and the excess. ``candidate`` defaults to the audit's;
        pass a control to see one control against the others (leave-one-out)."""
        pd = _pd()
        cand = candidate or self.candidate
        ctl = [k for k in self.controls if k != cand]
        df = self.scores()
        df = df[df["battery"] == battery]

        def s(a, b):
            m = df[((df.model_a == a) & (df.model_b == b)) | ((df.model_a == b) & (df.model_b == a))]
            return m.set_index("prompt_id")["score"]

        out = pd.DataFrame({"similarity": s(cand, reference)})
        if ctl:
            b_ref = pd.concat([s(k, reference) for k in ctl], axis=1).mean(axis=1)
            b_cand = pd.concat([s(cand, k) for k in ctl], axis=1).mean(axis=1)
            out["baseline"] = {"reference": b_ref, "candidate": b_cand, "both": (b_ref + b_cand) / 2}[side]
            out["excess"] = out["similarity"] - out["baseline"]
        return out

    def claims(self):
        """Self-identification: per battery, model, language and claimed maker, the count and share."""
        return self._claims_frame(self.report.get("details") or [])

    def claims_table(self):
        """One row per battery, model and language: the most frequent claim and its share."""
        return self._claims_table(self.report.get("details") or [])

    def quirk_answers(self):
        """Quirks: per battery, kind of question, model and answer, the count and share."""
        rows = []
        for d in self.report.get("details") or []:
            if d["kind"] != "quirks":
                continue
            for g in d["groups"]:
                for m, counts in g["answers"].items():
                    n = sum(counts.values())
                    rows += [{"battery": d["battery"], "group": g["group"], "model": m, "role": self.roles.get(m),
                              "answer": a, "count": k, "share": k / n if n else None} for a, k in counts.items()]
        return _pd().DataFrame(rows, columns=["battery", "group", "model", "role", "answer", "count", "share"])

    def shared_ngrams(self):
        """Per battery and reference: the shared distinctive n-grams and on how many prompts."""
        rows = [{"battery": d["battery"], "reference": s["reference"], "n": d["n"], **g}
                for d in self.report.get("details") or [] if d["kind"] == "ngram"
                for s in d["shared"] for g in s["ngrams"]]
        return _pd().DataFrame(rows, columns=["battery", "reference", "n", "ngram", "shared_prompts",
                                              "control_prompts"])

    def evidence(self):
        """The verbatim responses behind the top findings, with content hashes and store keys."""
        rows = [{"battery": e["battery"], "prompt_id": e["prompt_id"], "prompt": e["prompt"], "reason": e["reason"],
                 **r} for e in self.report["evidence"] for r in e["responses"]]
        return _pd().DataFrame(rows)

    def usage(self):
        """Per model: responses, tokens, generation seconds, API calls and cost."""
        per = (self.report.get("usage") or {}).get("per_model", {})
        return _pd().DataFrame([{"model": m, **u} for m, u in per.items()])

    # -- figures -----------------------------------------------------------------------------
    def _detail(self, kind: str, battery: str | None):
        for d in self.report.get("details") or []:
            if d["kind"] == kind and (battery is None or d["battery"] == battery):
                return d
        raise KeyError(f"no {kind} details{f' for battery {battery!r}' if battery else ''} in this report")

    def combined_plot(self):
        return F.combined_figure(self.report)

    def forest(self, battery: str | None = None):
        """One battery's similarity, baseline and excess; without ``battery``, the excess of all."""
        return F.forest_figure(self.report) if battery is None else F.battery_forest_figure(self.report, battery)

    def self_id(self, battery: str | None = None):
        return F.self_id_figure(self._detail("self_id", battery), self.roles)

    def quirks(self, battery: str | None = None, groups: int = 5):
        return F.quirks_figure(self._detail("quirks", battery), self.report, groups=groups)

    def ngrams(self, battery: str | None = None):
        return F.ngram_figure(self._detail("ngram", battery))

    def figures(self) -> dict[str, Any]:
        """Every chart of report.html, by name (charts with nothing to plot are left out)."""
        out = {"combined": self.combined_plot(), "forest": self.forest()}
        for b in self.report["batteries"]:
            out[f"forest:{b['name']}"] = self.forest(b["name"])
        draw = {"self_id": lambda d: F.self_id_figure(d, self.roles), "quirks": lambda d: F.quirks_figure(d, self.report),
                "ngram": F.ngram_figure}
        for d in self.report.get("details") or []:
            out[f"{d['kind']}:{d['battery']}"] = draw[d["kind"]](d)
        return {k: v for k, v in out.items() if v is not None}

    # -- display -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"<provenance.notebook.Audit {self.directory}: {self.candidate} vs {', '.join(self.references)}; "
                f"controls {', '.join(self.controls) or 'none'}>")

    def _repr_html_(self) -> str:
        from .report import _text as t
        from .report.html import _headline, _opening, esc

        rows = "".join(
            f"<tr><td>{esc(r['battery'])}</td><td>{esc(r['reference'])}</td><td>{esc(r['n_prompts'])}</td>"
            f"<td>{esc(t.value_ci(r['similarity']))}</td><td>{esc(t.value_ci(r['baseline']))}</td>"
            f"<td>{esc(t.value_ci(r['excess']))}</td></tr>" for r in self.report["results"])
        caveats = "".join(f"<li>{esc(c)}</li>" for c in self.report["caveats"])
        return (f"<div><h3>provenance audit: {esc(self.candidate)}</h3>{_opening(self.report)}{_headline(self.report)}"
                f"<table><thead><tr><th>Battery</th><th>Reference</th><th>Prompts</th><th>Similarity</th>"
                f"<th>Baseline</th><th>Excess [{esc(t.level(self.report['statistics']))} CI]</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>"
                + (f"<p><strong>Caveats</strong></p><ul>{caveats}</ul>" if caveats else "")
                + f"<p><small>{esc(self.directory)}: report.html has every chart and the evidence.</small></p></div>")


class Pool(_View):
    """A pool comparison (``provenance compare``): pairwise similarities and teacher rankings."""

    @property
    def models(self) -> list[str]:
        return list(self.report["pool"]["models"])

    def pairs(self):
        """One row per pair and battery (``battery`` 'combined' for the combination)."""
        rows = []
        for p in self.report["pairs"]:
            rows.append({"a": p["a"], "b": p["b"], "battery": "combined", **_est_row(p["combined"])})
            rows += [{"a": p["a"], "b": p["b"], "battery": b, **_est_row(e)} for b, e in p["by_battery"].items()]
        return _pd().DataFrame(rows)

    def matrix(self, battery: str | None = None):
        """Square frame of pairwise similarity estimates (combined, or of one battery)."""
        pd = _pd()
        labels = self.models
        m = pd.DataFrame(float("nan"), index=labels, columns=labels)
        for p in self.report["pairs"]:
            e = p["combined"] if battery is None else p["by_battery"].get(battery)
            if e and e.get("estimate") is not None:
                m.loc[p["a"], p["b"]] = m.loc[p["b"], p["a"]] = e["estimate"]
        return m

    def rankings(self):
        """Per candidate, the other models ranked as possible teachers."""
        rows = [{"candidate": r["candidate"], "rank": e["rank"], "reference": e["reference"], "p_first": e["p_first"],
                 "mean_rank": e["mean_rank"], **_est_row(e["score"])}
                for r in self.report["rankings"] for e in r["entries"]]
        return _pd().DataFrame(rows)

    def heatmap(self, battery: str | None = None):
        return F.heatmap_figure(self.report, battery)

    def figures(self) -> dict[str, Any]:
        out = {"heatmap": self.heatmap()}
        for b in self.report["pool"]["batteries"]:
            out[f"heatmap:{b}"] = self.heatmap(b)
        return {k: v for k, v in out.items() if v is not None}

    @cached_property
    def _details(self) -> list[dict[str, Any]]:
        from .report.details import scorer_kind, self_id_details

        strings = {m["label"]: m["model_string"] for m in self.report["models"]}
        datas = self._battery_datas(strings, list(self.report["pool"]["batteries"]), self.report["pool"].get("samples"))
        return [self_id_details(d, self.models) for d in datas if scorer_kind(d.battery.scorer) == "self_id"]

    def claims(self):
        """Self-identification of every pool model, from the store: per battery, model,
        language and claimed maker, the count and share."""
        return self._claims_frame(self._details)

    def claims_table(self):
        """One row per battery, model and language: the most frequent claim and its share."""
        return self._claims_table(self._details)

    def self_id(self, battery: str | None = None):
        for d in self._details:
            if battery is None or d["battery"] == battery:
                return F.self_id_figure(d)
        raise KeyError("no self-identification battery in this comparison")

    def __repr__(self) -> str:
        return f"<provenance.notebook.Pool {self.directory}: {len(self.models)} models>"

    def _repr_html_(self) -> str:
        e = _html.escape
        rk = "".join(f"<li>{e(r['candidate'])}: " + ", ".join(
            f"{e(x['reference'])} ({x['score']['estimate']:.3f}, first in {100 * x['p_first']:.0f}%)"
            for x in r["entries"][:3] if x["score"].get("estimate") is not None) + "</li>" for r in self.report["rankings"])
        caveats = "".join(f"<li>{e(c)}</li>" for c in self.report["caveats"])
        return (f"<div><h3>provenance comparison of {len(self.models)} models</h3>"
                f"<p>Batteries: {e(', '.join(self.report['pool']['batteries']))}; seed {e(str(self.report['pool']['seed']))}."
                f"</p>" + (f"<p>Top possible teachers:</p><ul>{rk}</ul>" if rk else "")
                + (f"<p><strong>Caveats</strong></p><ul>{caveats}</ul>" if caveats else "") + "</div>")
