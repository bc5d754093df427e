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
        f"({stats['n_resamples']} resamples, seed {stats['seed']}). Baseline: {cell(stats['baseline'])}."
        + (f" {cell(stats['baseline_choice'])}" if stats.get("baseline_choice") else ""),
        "",
    ]
    if report.get("combined"):
        out += ["## Summary", ""] + [f"- {cell(t.headline(c, cand))}" for c in report["combined"]] + [""]
    out += [
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
            t.value_ci(r.get("rank_excess")), t.value_ci(r.get("normalised")), t.value_ci(r["ceiling"]),
            cell(t.pvalue(r.get("test"))), controls or "none",
        ])
    out += _table(
        ["Battery", "Reference", "Prompts", "Similarity", "Baseline", f"Excess ({t.level(stats)} CI)", "Rank excess",
         "Normalised", "Ceiling", "Permutation test", "Controls' own excess"],
        rows,
    )
    if report.get("combined"):
        out += ["", "## Combined over batteries", ""]
        out += _table(
            ["Reference", "Scale", "Weights", f"Combined excess ({t.level(stats)} CI)", "Permutation test",
             "Controls' own combined excess"],
            [[cell(c["reference"]), cell(c["scale"]), cell(", ".join(f"{b} {w:.2f}" for b, w in c["weights"].items())),
              t.value_ci(c["excess"]), cell(t.pvalue(c.get("test"))),
              ", ".join(f"{cell(x['control'])} {t.value_ci(x['excess'])}" for x in c["controls"]) or "none"]
             for c in report["combined"]],
        )
    if any(r.get("normalised_note") for r in report["results"]):
        out += [""] + [f"- Normalised score, {cell(r['battery'])} vs {cell(r['reference'])}: {cell(r['normalised_note'])}"
                       for r in report["results"] if r.get("normalised_note")]
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
