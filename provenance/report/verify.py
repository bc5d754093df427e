"""``provenance verify AUDIT_DIR``: does the report still match the store?

A report is evidence only if a sceptical reader can redo it. This module redoes it, offline,
from the audit directory alone, and says what differs:

1. **record**: report.json validates against its schema;
2. **store**: every stored response's content hash is the SHA-256 of its text (an edited
   answer shows up here even when nothing else changed);
3. **evidence**: every verbatim response in the report is the stored one, byte for byte, under
   the store key and content hash the report prints;
4. **models**: each model's identity (weights hash, chat template, system prompt, ...) is still
   what the report recorded;
5. **numbers**: the whole report recomputed from the store (scores, estimates, intervals,
   details, usage) equals the recorded one, field by field (numbers to 1e-9 relative);
6. **scores.csv**: the per-prompt scores file equals the recomputed scores;
7. **views**: report.md and report.html are exactly the renderings of report.json.

Fields that describe the run rather than the evidence (``created_at``, ``collection``, and
``tool`` when another version verifies) are reported as notes, not mismatches.
"""

from __future__ import annotations

import json
import math
import sqlite3
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: fields of report.json that describe the run, not the evidence
RUN_FIELDS = ("created_at", "collection", "tool")
#: prose about the method (the measurements behind a choice, as of the version that wrote the
#: report): a newer version may word it differently or quote newer measurements; a note, not a mismatch
DESCRIPTIVE_FIELDS = (("statistics", "baseline_choice"),)
MAX_LISTED = 20


@dataclass
class Check:
    """One check: its name, whether it passed, and what it found (one line per finding)."""

    name: str
    ok: bool
    summary: str
    findings: list[str] = field(default_factory=list)


@dataclass
class Verification:
    """The result of :func:`verify_audit`: ``ok`` when every check passed."""

    audit_dir: Path
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def mismatches(self) -> list[str]:
        return [f for c in self.checks if not c.ok for f in c.findings]

    def lines(self) -> list[str]:
        out = []
        for c in self.checks:
            out.append(f"{'ok' if c.ok else 'MISMATCH'}: {c.name}: {c.summary}")
            shown = c.findings[:MAX_LISTED]
            out += [f"  {f}" for f in shown]
            if len(c.findings) > len(shown):
                out.append(f"  ... and {len(c.findings) - len(shown)} more")
        out += [f"note: {n}" for n in self.notes]
        out.append(f"{'the report matches the store' if self.ok else 'the report does NOT match the store'}: "
                   f"{self.audit_dir}")
        return out


def diff(recorded: Any, recomputed: Any, path: str = "", *, rel_tol: float = 1e-9, abs_tol: float = 1e-12,
         out: list[str] | None = None) -> list[str]:
    """Paths where two JSON values differ: 'results[0].excess.estimate: report 0.64, store 0.65'."""
    out = [] if out is None else out
    where = path or "(top level)"
    num = (int, float)
    if isinstance(recorded, bool) or isinstance(recomputed, bool):
        if recorded is not recomputed:
            out.append(f"{where}: report {recorded!r}, store {recomputed!r}")
    elif isinstance(recorded, num) and isinstance(recomputed, num):
        if not math.isclose(recorded, recomputed, rel_tol=rel_tol, abs_tol=abs_tol):
            out.append(f"{where}: report {recorded!r}, store {recomputed!r}")
    elif isinstance(recorded, dict) and isinstance(recomputed, dict):
        for k in recorded.keys() | recomputed.keys():
            sub = f"{path}.{k}" if path else str(k)
            if k not in recomputed:
                out.append(f"{sub}: in the report, not recomputed")
            elif k not in recorded:
                out.append(f"{sub}: recomputed, missing from the report")
            else:
                diff(recorded[k], recomputed[k], sub, rel_tol=rel_tol, abs_tol=abs_tol, out=out)
    elif isinstance(recorded, list) and isinstance(recomputed, list):
        if len(recorded) != len(recomputed):
            out.append(f"{where}: report has {len(recorded)} entries, store gives {len(recomputed)}")
        for i, (a, b) in enumerate(zip(recorded, recomputed)):
            diff(a, b, f"{path}[{i}]", rel_tol=rel_tol, abs_tol=abs_tol, out=out)
    elif recorded != recomputed:
        show = lambda v: repr(v) if len(repr(v)) <= 80 else repr(v)[:77] + "..."  # noqa: E731
        out.append(f"{where}: report {show(recorded)}, store {show(recomputed)}")
    return out


def store_hashes(store_path: Path) -> list[str]:
    """Stored responses whose content hash is not the SHA-256 of their text (read-only)."""
    from ..models.base import text_hash

    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        bad = []
        for key, ph, sample, text, h in conn.execute(
                "SELECT model_key, prompt_hash, sample, text, content_hash FROM responses"):
            if text_hash(text) != h:
                bad.append(f"{key}/{ph[:16]}/{sample}: stored hash {h[:16]}..., text hashes to {text_hash(text)[:16]}...")
        n = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
    finally:
        conn.close()
    return [f"{n} responses"] + bad


def _evidence(report: dict[str, Any], store_path: Path) -> tuple[int, list[str]]:
    from ..models.base import text_hash

    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    findings, n = [], 0
    try:
        for i, ev in enumerate(report.get("evidence", [])):
            for j, r in enumerate(ev["responses"]):
                n += 1
                where = f"evidence[{i}].responses[{j}] ({r['model']}, store key {r['store_key']})"
                key, _, rest = r["store_key"].partition("/")
                prefix, _, sample = rest.partition("/")
                rows = conn.execute("SELECT text, content_hash FROM responses WHERE model_key=? AND sample=? AND "
                                    "substr(prompt_hash, 1, 16)=?", (key, int(sample or -1), prefix)).fetchall()
                if not rows:
                    findings.append(f"{where}: no such response in the store")
                    continue
                text, h = rows[0]
                if r["text"] != text:
                    findings.append(f"{where}: the report's text differs from the stored text")
                if r["content_hash"] != h:
                    findings.append(f"{where}: content hash {r['content_hash'][:16]}... in the report, "
                                    f"{h[:16]}... in the store")
                if text_hash(r["text"]) != r["content_hash"]:
                    findings.append(f"{where}: the report's text does not hash to its content hash")
    finally:
        conn.close()
    return n, findings


def _views(report: dict[str, Any], audit_dir: Path) -> list[str]:
    if report.get("kind") == "compare":
        from .compare import render_compare_html as html_view, render_compare_markdown as md_view
    else:
        from .html import render_html as html_view
        from .markdown import render_markdown as md_view
    findings = []
    for name, render in (("report.md", md_view), ("report.html", html_view)):
        p = audit_dir / name
        if not p.exists():
            findings.append(f"{name}: missing")
        elif p.read_text(encoding="utf-8") != render(report):
            findings.append(f"{name}: is not the rendering of report.json (edited, or rendered by another version)")
    return findings


def recompute(audit_dir: str | Path, report: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict]]:
    """The report and per-prompt scores of an audit directory, recomputed from its store
    (no model is asked anything). ``collection`` is copied from ``report`` when given."""
    from ..audit import STORE_FILE, build_models, build_report, load_audit_dir
    from ..battery import resolve_batteries
    from ..store import Store

    audit_dir = Path(audit_dir)
    spec = load_audit_dir(audit_dir)
    models, roles, strings = build_models(spec)
    try:
        batteries = resolve_batteries(spec.batteries, models)
        store_path = Path(spec.store) if spec.store else audit_dir / STORE_FILE
        rows: list[dict] = []
        with Store(store_path) as store, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate-data warnings were the audit's to give
            collection = (report or {}).get("collection") or {"requests": 0, "cached": 0, "seconds": 0.0, "per_model": {}}
            fresh = build_report(spec, models, roles, strings, batteries, store, collection, scores=rows)
    finally:
        for m in models.values():
            m.close()
    return fresh, rows


def verify_audit(audit_dir: str | Path) -> Verification:
    """Run every check on ``audit_dir`` (see the module docstring)."""
    from ..audit import SCORES_FILE, STORE_FILE, load_audit_dir
    from . import ReportError, validate_report
    from .details import read_scores_csv

    d = Path(audit_dir)
    v = Verification(d)
    try:
        report = json.loads((d / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        v.checks.append(Check("record", False, f"report.json unreadable ({e})"))
        return v
    try:
        validate_report(report)
        v.checks.append(Check("record", True, f"report.json validates against schema version {report['schema_version']}"))
    except ReportError as e:
        v.checks.append(Check("record", False, "report.json does not validate", [str(e)]))
        return v

    spec = load_audit_dir(d) if report.get("kind") == "audit" else None
    store_path = Path(spec.store) if spec and spec.store else d / STORE_FILE
    if not store_path.exists():
        v.checks.append(Check("store", False, f"{store_path} not found"))
        return v
    found = store_hashes(store_path)
    bad = found[1:]
    v.checks.append(Check("store", not bad, f"{found[0]}: {len(bad)} whose text no longer hashes to its content hash"
                          if bad else f"{found[0]}, every text hashes to its content hash", bad))
    n, findings = _evidence(report, store_path)
    v.checks.append(Check("evidence", not findings,
                          f"{n} verbatim responses are the stored ones" if not findings
                          else f"{len(findings)} problems in {n} verbatim responses", findings))

    if report.get("kind") == "audit":
        fresh, rows = recompute(d, report)
        ids = {m["label"]: m["identity_hash"] for m in fresh["models"]}
        changed = [f"{m['label']}: identity hash {m['identity_hash']} in the report, {ids.get(m['label'])} now "
                   f"(weights, template or settings differ from the audit's)"
                   for m in report["models"] if ids.get(m["label"]) != m["identity_hash"]]
        v.checks.append(Check("models", not changed, f"{len(report['models'])} model identities unchanged"
                              if not changed else f"{len(changed)} model identities changed", changed))
        newer = [k for k in fresh if k not in report and k not in RUN_FIELDS]
        if newer:  # optional sections this record predates: nothing to compare them with
            v.notes.append(f"this record has no {', '.join(newer)} (written by an earlier version); not compared")
        recorded = {k: x for k, x in report.items() if k not in RUN_FIELDS}
        recomputed = {k: x for k, x in fresh.items() if k not in RUN_FIELDS and k not in newer}
        for section, key in DESCRIPTIVE_FIELDS:
            a = (recorded.get(section) or {}).get(key)
            b = (recomputed.get(section) or {}).get(key)
            if a != b and isinstance(recorded.get(section), dict) and isinstance(recomputed.get(section), dict):
                v.notes.append(f"{section}.{key} is worded differently by this version (a description of the method, "
                               f"not a result); not compared")
                recorded[section] = {k: x for k, x in recorded[section].items() if k != key}
                recomputed[section] = {k: x for k, x in recomputed[section].items() if k != key}
        numbers = diff(recorded, recomputed)
        v.checks.append(Check("numbers", not numbers, "every field recomputed from the store equals the report"
                              if not numbers else f"{len(numbers)} fields differ from the recomputation", numbers))
        if report["tool"] != fresh["tool"]:
            v.notes.append(f"recorded by {report['tool']['name']} {report['tool']['version']} "
                           f"({', '.join(f'{k} {x}' for k, x in report['tool']['packages'].items())}); verified with "
                           f"{fresh['tool']['version']} "
                           f"({', '.join(f'{k} {x}' for k, x in fresh['tool']['packages'].items())})")
        scores_path = d / SCORES_FILE
        if scores_path.exists():
            got = read_scores_csv(scores_path)
            want = [{**r, "prompt_key": r["prompt_key"]} for r in rows]
            want = [{k: ("" if x is None and k != "score" else x) for k, x in r.items()} for r in want]
            sdiff = diff(got, want, "scores.csv")
            v.checks.append(Check("scores.csv", not sdiff, f"{len(rows)} per-prompt scores equal the recomputation"
                                  if not sdiff else f"{len(sdiff)} entries differ", sdiff))
        else:
            v.notes.append(f"{SCORES_FILE} absent (written by provenance audit/report since this version)")
    else:
        v.notes.append("numbers are recomputed for audit reports only; this pool report was checked for its "
                       "record, store hashes and views")
    views = _views(report, d)
    v.checks.append(Check("views", not views, "report.md and report.html are the renderings of report.json"
                          if not views else "a view does not match the record", views))
    v.notes.append(f"not recomputable from the store, so not checked: created_at {report['created_at']}, "
                   f"collection (what the run that wrote the report asked and how long it took)")
    return v
