"""report.html: one self-contained page that opens offline.

plotly.js is embedded inline once; no script, style or font is fetched from the network.
Every string from the report (model outputs above all, but also model strings, battery
names, labels and caveats) is untrusted and goes through :func:`esc` before it reaches
the page.
"""

from __future__ import annotations

import html as _html
import json
from typing import Any

from . import _text as t
from .figures import forest_figure

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:70rem;margin:2rem auto;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d6d6d6;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr.control td{color:#555}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
pre{background:#f7f7f7;border:1px solid #e2e2e2;padding:.5rem;white-space:pre-wrap;
overflow-wrap:anywhere;max-height:24rem;overflow:auto}
.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;overflow-wrap:anywhere}
.muted{color:#666}.caveats li{margin:.2rem 0}
.response{border-left:3px solid #ccc;padding-left:.6rem;margin:.6rem 0}
.response.candidate{border-color:#1f4e9c}.response.reference{border-color:#b5651d}
"""


def esc(s: Any) -> str:
    """HTML-escape any value, quotes included (safe in text and in attribute values)."""
    return _html.escape(str(s), quote=True)


def _tag_table(header: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """Rows are (css class, cells); cells are already-escaped HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join(
        f'<tr class="{cls}">' + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>"
        for cls, cells in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num_cell(est) -> str:
    return f'<td class="num">{esc(t.value_ci(est))}</td>'


def _summary(report: dict[str, Any]) -> str:
    audit, stats, tool = report["audit"], report["statistics"], report["tool"]
    models = t.models_by_label(report)
    cand = t.candidate_label(report)
    refs = t.role_labels(report, "reference")
    ctrls = t.role_labels(report, "control")

    def who(label: str) -> str:
        m = models.get(label)
        return f"<strong>{esc(label)}</strong> (<code>{esc(m['model_string'])}</code>)" if m else f"<strong>{esc(label)}</strong>"

    batteries = "; ".join(
        f"<strong>{esc(b['name'])}</strong> v{esc(b['version'])} ({esc(t.plural(b['n_prompts'], 'prompt'))}, {esc(t.generation(b))})"
        for b in report["batteries"]
    ) or "none"
    parts = [
        f"<p>On {esc(report['created_at'])}, {esc(tool['name'])} {esc(tool['version'])} compared the candidate "
        f"{who(cand)} with {'the reference' if len(refs) == 1 else 'the references'} "
        f"{t.join([who(r) for r in refs])}"
        + (f", using {'the control' if len(ctrls) == 1 else 'the controls'} {t.join([who(c) for c in ctrls])} as the baseline"
           if ctrls else "")
        + f", on {'the battery' if len(report['batteries']) == 1 else 'the batteries'} {batteries}. "
        f"Audit seed {esc(audit['seed'])}.</p>",
        f"<p>Excess similarity is the candidate's similarity to a reference minus the baseline "
        f"({esc(stats['baseline'])}), paired by prompt. Intervals are {esc(t.level(stats))} intervals "
        f"from a {esc(stats['method'])} with {esc(stats['n_resamples'])} resamples (seed {esc(stats['seed'])}).</p>",
    ]
    if not ctrls:
        parts.append("<p><strong>No controls were given, so no baseline exists:</strong> only similarity is reported, "
                     "and it cannot be compared with how close independent models come.</p>")
    items = []
    for r in report["results"]:
        head = f"<strong>{esc(r['battery'])}</strong>, reference <strong>{esc(r['reference'])}</strong>: "
        if r["excess"] is not None:
            line = f"{esc(t.describe(r['excess'], 'excess similarity'))}; {esc(t.position(r['excess']))}"
            line += f" (similarity {esc(t.value_ci(r['similarity']))}, baseline {esc(t.value_ci(r['baseline']))})."
        else:
            line = f"{esc(t.describe(r['similarity'], 'similarity'))}; no baseline, so no excess."
        ctl = [
            f"{esc(c['control'])} {esc(t.value_ci(c['excess']))}"
            for c in r["controls"] if c["excess"] is not None
        ]
        if ctl:
            line += f" The controls' own excess against {esc(r['reference'])} (leave-one-out): {'; '.join(ctl)}."
        items.append(f"<li>{head}{line}</li>")
    parts.append(f"<ul>{''.join(items)}</ul>" if items else "<p>No results.</p>")
    return "\n".join(parts)


def _results_table(report: dict[str, Any]) -> str:
    cand = t.candidate_label(report)
    rows = []
    for r in report["results"]:
        rows.append(("candidate", [esc(r["battery"]), esc(r["reference"]), f"{esc(cand)} (candidate)", esc(r["n_prompts"]),
                                   _num_cell(r["similarity"]), _num_cell(r["baseline"]), _num_cell(r["excess"]),
                                   _num_cell(r["ceiling"])]))
        for c in r["controls"]:
            rows.append(("control", [esc(r["battery"]), esc(r["reference"]), f"{esc(c['control'])} (control)",
                                     esc(c["similarity"]["n_prompts"]), _num_cell(c["similarity"]), "—",
                                     _num_cell(c["excess"]), "—"]))
    level = esc(t.level(report["statistics"]))
    table = _tag_table(
        ["Battery", "Reference", "Model", "Prompts", f"Similarity [{level} CI]", "Baseline", "Excess", "Ceiling"], rows
    )
    return table + (
        '<p class="muted">Control rows: the control\'s own similarity to the reference, and its excess over a '
        "baseline taken from the other controls (leave-one-out).</p>"
    )


def _evidence(report: dict[str, Any]) -> str:
    if not report["evidence"]:
        return "<p>No evidence was recorded.</p>"
    out = []
    for ev in report["evidence"]:
        responses = "".join(
            f'<div class="response {esc(r["role"])}"><div><strong>{esc(r["model"])}</strong> ({esc(r["role"])}), '
            f"sample {esc(r['sample'])}; feature: <code>{esc(r['feature'])}</code></div>"
            f"<pre>{esc(r['text'])}</pre>"
            f'<div class="hash">content hash {esc(r["content_hash"])} · store key {esc(r["store_key"])}</div></div>'
            for r in ev["responses"]
        )
        out.append(
            f"<section><h3>{esc(ev['battery'])} · prompt {esc(ev['prompt_id'])}</h3>"
            f"<p>{esc(ev['reason'])}</p><pre>{esc(ev['prompt'])}</pre>{responses}</section>"
        )
    return "\n".join(out)


def _methods(report: dict[str, Any]) -> str:
    tool, stats, audit, coll = report["tool"], report["statistics"], report["audit"], report["collection"]
    kv = lambda pairs: _tag_table(["Setting", "Value"], [("", [esc(k), f"<code>{esc(v)}</code>"]) for k, v in pairs])  # noqa: E731
    packages = ", ".join(f"{esc(k)} {esc(v)}" for k, v in tool["packages"].items()) or "none recorded"
    parts = [
        "<h3>Tool</h3>",
        kv([("tool", f"{tool['name']} {tool['version']}"), ("python", tool["python"]), ("created at", report["created_at"]),
            ("schema version", report["schema_version"])]),
        f"<p class=\"muted\">Packages: {packages}</p>",
        "<h3>Audit</h3>",
        kv([(k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v) for k, v in audit.items()]),
        "<h3>Statistics</h3>",
        kv([(k, v) for k, v in stats.items()]),
        "<h3>Batteries</h3>",
        _tag_table(
            ["Name", "Version", "Description", "Scorer", "Prompts", "Generation", "Content hash"],
            [("", [esc(b["name"]), esc(b["version"]), esc(b["description"]), esc(b["scorer"]), esc(b["n_prompts"]),
                   esc(t.generation(b)), f'<span class="hash">{esc(b["content_hash"])}</span>'])
             for b in report["batteries"]],
        ),
        "<h3>Models</h3>",
        _tag_table(
            ["Label", "Role", "Model string", "Provider", "Identity", "Identity hash"],
            [("", [esc(m["label"]), esc(m["role"]), f"<code>{esc(m['model_string'])}</code>", esc(m["provider"]),
                   f"<pre>{esc(json.dumps(m['identity'], indent=1, ensure_ascii=False, sort_keys=True))}</pre>",
                   f'<span class="hash">{esc(m["identity_hash"])}</span>'])
             for m in report["models"]],
        ),
        "<h3>Collection</h3>",
        _tag_table(
            ["Model", "Requests", "Cached", "Seconds"],
            [("", [esc(k), esc(v["requests"]), esc(v["cached"]), esc(f"{v['seconds']:.1f}")]) for k, v in coll["per_model"].items()]
            + [("", ["<strong>all</strong>", esc(coll["requests"]), esc(coll["cached"]), esc(f"{coll['seconds']:.1f}")])],
        ),
    ]
    return "\n".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """The self-contained HTML view of a (validated) report dict."""
    from plotly.offline import get_plotlyjs

    cand = t.candidate_label(report)
    fig = forest_figure(report)
    figure_html = (
        fig.to_html(full_html=False, include_plotlyjs=False, div_id="forest-plot", config={"displaylogo": False})
        if fig is not None else "<p>No excess estimates to plot.</p>"
    )
    caveats = "".join(f"<li>{esc(c)}</li>" for c in report["caveats"]) or "<li>None recorded.</li>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>provenance audit: {esc(cand)}</title>
<style>{CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>provenance audit: {esc(cand)}</h1>
<section id="summary"><h2>Summary</h2>
{_summary(report)}
</section>
<section id="caveats"><h2>Caveats</h2><ul class="caveats">{caveats}</ul></section>
<section id="forest"><h2>Excess similarity by battery and reference</h2>
{figure_html}
</section>
<section id="results"><h2>Results</h2>
{_results_table(report)}
</section>
<section id="evidence"><h2>Evidence</h2>
<p class="muted">Verbatim responses, each with the content hash that ties it to the store.</p>
{_evidence(report)}
</section>
<section id="methods"><h2>Methods and manifest</h2>
{_methods(report)}
</section>
<footer class="muted"><p>Rendered from report.json (schema version {esc(report['schema_version'])}).
Re-render: <code>{esc(t.RE_RENDER)}</code></p></footer>
</body>
</html>
"""
