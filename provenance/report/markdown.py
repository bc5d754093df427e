"""report.md: a short view of a report, small enough to paste into a ticket.

Verbatim evidence stays in report.html and report.json; this view carries the numbers, the
caveats and the hashes needed to tie them to the record.
"""

from __future__ import annotations

import html
from typing import Any

from . import _text as t


def cell(s: Any) -> str:
    """Make untrusted text safe inside a Markdown table cell (no HTML, pipes or newlines)."""
    return html.escape(" ".join(str(s).split()), quote=False).replace("|", "\\|").replace("`", "\\`")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown view of a (validated) report dict."""
    stats = report["statistics"]
    tool = report["tool"]
    cand = t.candidate_label(report)
    out = [
        f"# provenance audit: {cell(cand)}",
        "",
        f"Created {cell(report['created_at'])} by {cell(tool['name'])} {cell(tool['version'])}. "
        f"Seed {report['audit']['seed']}; intervals at {t.level(stats)} by {cell(stats['method'])} "
        f"({stats['n_resamples']} resamples, seed {stats['seed']}). Baseline: {cell(stats['baseline'])}.",
        "",
        "## Models",
        "",
    ]
    out += _table(
        ["Role", "Label", "Model", "Identity hash"],
        [[m["role"], cell(m["label"]), cell(m["model_string"]), cell(m["identity_hash"])] for m in report["models"]],
    )
    out += ["", "## Results", ""]
    if not t.role_labels(report, "control"):
        out += ["No controls were given, so no baseline exists: only similarity is reported.", ""]
    rows = []
    for r in report["results"]:
        controls = ", ".join(
            f"{cell(c['control'])} {t.num((c['excess'] or {}).get('estimate'), t.decimals(c['excess']))}"
            for c in r["controls"]
        )
        rows.append([
            cell(r["battery"]), cell(r["reference"]), str(r["n_prompts"]),
            t.value_ci(r["similarity"]), t.value_ci(r["baseline"]), t.value_ci(r["excess"]),
            controls or "none",
        ])
    out += _table(
        ["Battery", "Reference", "Prompts", "Similarity", "Baseline", f"Excess ({t.level(stats)} CI)", "Controls' own excess"],
        rows,
    )
    out += ["", "## Caveats", ""]
    out += [f"- {cell(c)}" for c in report["caveats"]] or ["- none recorded"]
    out += ["", "## Batteries", ""]
    out += _table(
        ["Battery", "Version", "Prompts", "Scorer", "Content hash"],
        [[cell(b["name"]), cell(b["version"]), str(b["n_prompts"]), cell(b["scorer"]), cell(b["content_hash"])]
         for b in report["batteries"]],
    )
    out += [
        "",
        f"Evidence: {t.plural(len(report['evidence']), 'prompt')} with verbatim responses in report.html and report.json.",
        "",
        f"Re-render report.md and report.html from the record: `{t.RE_RENDER}`",
        "",
    ]
    return "\n".join(out)
