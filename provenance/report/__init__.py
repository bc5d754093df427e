"""Render an audit's report dict to report.json (the record), report.md and report.html.

report.json is the record; the other two are views of it and can be re-rendered from it
offline at any time (``python -m provenance.report report.json``). The shape of report.json is
fixed by ``schema.json`` (JSON Schema 2020-12), versioned by its ``schema_version``.

Words in every view describe magnitude, never a verdict.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from provenance.errors import ProvenanceError

from .html import render_html
from .markdown import render_markdown

__all__ = ["SCHEMA_VERSION", "ReportError", "load_schema", "render_html", "render_markdown", "validate_report", "write_report"]

SCHEMA_VERSION = "1"


class ReportError(ProvenanceError, ValueError):
    """A report dict does not match the report schema (message names the first bad field)."""


@cache
def load_schema() -> dict[str, Any]:
    """The JSON Schema of report.json, shipped as package data."""
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))


@cache
def load_compare_schema() -> dict[str, Any]:
    """The JSON Schema of a comparison's report.json (``kind: compare``, pool mode); it
    shares the estimate definitions of :func:`load_schema`."""
    schema = json.loads(resources.files(__package__).joinpath("compare_schema.json").read_text(encoding="utf-8"))
    schema["$defs"] = load_schema()["$defs"]
    return schema


def validate_report(report: dict[str, Any]) -> None:
    """Raise :class:`ReportError` (a ValueError) naming the first field that is wrong.

    Beyond the schema, checks what a schema cannot: every number is finite (JSON has no NaN;
    write None), and every battery and model label that results and evidence name exists.
    """
    import jsonschema
    from jsonschema.exceptions import best_match

    compare = isinstance(report, dict) and report.get("kind") == "compare"
    validator = jsonschema.Draft202012Validator(load_compare_schema() if compare else load_schema())
    error = best_match(validator.iter_errors(report))
    if error is not None:
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in error.validator_value if k not in error.instance]
            path.append(missing[0] if missing else "?")
            raise ReportError(f"report: {_path(path)}: required field is missing")
        message = " ".join(error.message.split())
        if len(message) > 160:
            message = message[:157] + "..."
        raise ReportError(f"report: {_path(path)}: {message}")
    bad = _first_non_finite(report, [])
    if bad is not None:
        raise ReportError(f"report: {_path(bad)}: number is NaN or infinite; write null instead")
    if compare:
        _check_compare_references(report)
    else:
        _check_references(report)


def write_report(report: dict[str, Any], out_dir) -> dict[str, Path]:
    """Validate ``report`` and write report.json, report.md and report.html into ``out_dir``.

    Returns the paths under the keys ``"json"``, ``"md"`` and ``"html"``. Nothing is written
    unless the report is valid and all three renderings succeed.
    """
    validate_report(report)
    if report.get("kind") == "compare":
        from .compare import render_compare_html, render_compare_markdown

        md, page = render_compare_markdown(report), render_compare_html(report)
    else:
        md, page = render_markdown(report), render_html(report)
    texts = {
        "json": json.dumps(report, indent=1, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n",
        "md": md,
        "html": page,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, text in texts.items():
        path = out / f"report.{key}"
        path.write_text(text, encoding="utf-8")
        paths[key] = path
    return paths


def _path(parts: list) -> str:
    """['results', 0, 'excess'] -> 'results[0].excess' (top level: '(top level)')."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _first_non_finite(obj, path):
    if isinstance(obj, float) and not math.isfinite(obj):
        return path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        found = _first_non_finite(v, path + [k])
        if found is not None:
            return found
    return None


def _check_references(report: dict[str, Any]) -> None:
    """Labels and battery names used in results and evidence must be declared, once."""
    labels: set[str] = set()
    for i, m in enumerate(report["models"]):
        if m["label"] in labels:
            raise ReportError(f"report: models[{i}].label: duplicate label {m['label']!r}")
        labels.add(m["label"])
    names: set[str] = set()
    for i, b in enumerate(report["batteries"]):
        if b["name"] in names:
            raise ReportError(f"report: batteries[{i}].name: duplicate battery {b['name']!r}")
        names.add(b["name"])

    def need(value, known, where, what):
        if value not in known:
            raise ReportError(f"report: {where}: {what} {value!r} is not declared")

    for i, r in enumerate(report["results"]):
        need(r["battery"], names, f"results[{i}].battery", "battery")
        need(r["reference"], labels, f"results[{i}].reference", "model label")
        for j, c in enumerate(r["controls"]):
            need(c["control"], labels, f"results[{i}].controls[{j}].control", "model label")
    for i, ev in enumerate(report["evidence"]):
        need(ev["battery"], names, f"evidence[{i}].battery", "battery")
        for j, resp in enumerate(ev["responses"]):
            need(resp["model"], labels, f"evidence[{i}].responses[{j}].model", "model label")
    for i, d in enumerate(report.get("details", [])):
        need(d["battery"], names, f"details[{i}].battery", "battery")
        used = [c["model"] for c in d.get("claims", [])] + [s["reference"] for s in d.get("shared", [])]
        used += [m for g in d.get("groups", []) for m in g["answers"]]
        for m in used:
            need(m, labels, f"details[{i}]", "model label")
    for m in (report.get("usage") or {}).get("per_model", {}):
        need(m, labels, "usage.per_model", "model label")


def _check_compare_references(report: dict[str, Any]) -> None:
    """Every label a comparison's pairs and rankings name is one of its models."""
    labels = [m["label"] for m in report["models"]]
    if len(set(labels)) != len(labels):
        raise ReportError("report: models: duplicate label")
    known = set(labels)
    for i, p in enumerate(report["pairs"]):
        for k in ("a", "b"):
            if p[k] not in known:
                raise ReportError(f"report: pairs[{i}].{k}: model label {p[k]!r} is not declared")
    for i, r in enumerate(report["rankings"]):
        for lab in [r["candidate"], *r["controls"], *(e["reference"] for e in r["entries"])]:
            if lab not in known:
                raise ReportError(f"report: rankings[{i}]: model label {lab!r} is not declared")
