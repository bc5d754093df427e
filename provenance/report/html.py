"""report.html: one self-contained page that opens offline.

plotly.js is embedded inline once; no script, style or font is fetched from the network, and
a Content-Security-Policy forbids the page to connect anywhere. Every string from the report
(model outputs above all, but also model strings, battery names, labels and caveats) is
untrusted and goes through :func:`esc` before it reaches the page; strings that reach a
figure are escaped in :mod:`.figures`.

The page: summary in plain words (what was asked of which models, with which settings, when;
per reference the combined excess with its interval; caveats), then per battery the forest
plot of similarity, baseline and excess, who each model claims to be, the quirk answer
distributions and the shared distinctive n-grams; the verbatim evidence with content hashes
and store keys; methods and manifest (definitions, interval methods, seeds, versions and
hashes, model identities, timings, usage and cost).
"""

from __future__ import annotations

import html as _html
import json
import re
from typing import Any

from . import _text as t
from . import figures as F

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
nav{font-size:.9rem}nav a{margin-right:.8rem}
.headline li{margin:.35rem 0}.caveats{background:#fff8e6;border:1px solid #f0d9a0;padding:.4rem 1rem}
.share{font-variant-numeric:tabular-nums;white-space:nowrap}
details>summary{cursor:pointer;margin:.4rem 0}
.figure{margin:.8rem 0}
"""

#: no network access at all: inline scripts and styles, images only from data: URIs
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


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
    """How the numbers are made, in a few sentences, and each battery's result per reference."""
    stats = report["statistics"]
    parts = [
        f"<p>Excess similarity is the candidate's similarity to a reference minus the baseline "
        f"({esc(stats['baseline'])}), paired by prompt. Intervals are {esc(t.level(stats))} intervals "
        f"from a {esc(stats['method'])} with {esc(stats['n_resamples'])} resamples (seed {esc(stats['seed'])}).</p>",
    ]
    if stats.get("baseline_side"):
        parts.append(f"<p>This report leads with the baseline from {esc(t.baseline_side(stats))}"
                     + (f" and combines batteries on the {esc(stats['combined_scale'])}" if stats.get("combined_scale")
                        else "")
                     + f". {esc(stats.get('baseline_choice', ''))} The rank excess is the share of baseline "
                     f"similarities that the candidate's similarity to the reference exceeds on a prompt (ties "
                     f"half), minus 1/2, averaged over prompts: 0 when the candidate is like the controls. "
                     f"Permutation p-values ({esc(stats.get('test', ''))}) stand beside the intervals; they are not a "
                     f"verdict.</p>")
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
        if r.get("rank_excess") is not None:
            line += f" {esc(t.describe(r['rank_excess'], 'Rank excess'))}."
        if r.get("test") is not None:
            line += f" Permutation test: {esc(t.pvalue(r['test']))}."
        items.append(f"<li>{head}{line}</li>")
    parts.append("<p>Per battery:</p>" + f"<ul>{''.join(items)}</ul>" if items else "<p>No results.</p>")
    return "\n".join(parts)


def _results_table(report: dict[str, Any]) -> str:
    cand = t.candidate_label(report)
    rows = []
    for r in report["results"]:
        rows.append(("candidate", [esc(r["battery"]), esc(r["reference"]), f"{esc(cand)} (candidate)", esc(r["n_prompts"]),
                                   _num_cell(r["similarity"]), _num_cell(r["baseline"]), _num_cell(r["excess"]),
                                   _num_cell(r.get("rank_excess")), _num_cell(r["ceiling"]),
                                   _num_cell(r.get("normalised")), esc(t.pvalue(r.get("test")))]))
        for c in r["controls"]:
            rows.append(("control", [esc(r["battery"]), esc(r["reference"]), f"{esc(c['control'])} (control)",
                                     esc(c["similarity"]["n_prompts"]), _num_cell(c["similarity"]), "—",
                                     _num_cell(c["excess"]), _num_cell(c.get("rank_excess")), "—", "—", "—"]))
    level = esc(t.level(report["statistics"]))
    table = _tag_table(
        ["Battery", "Reference", "Model", "Prompts", f"Similarity [{level} CI]", "Baseline", "Excess", "Rank excess",
         "Ceiling", "Normalised", "Permutation test"], rows
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


def _figure(fig, div_id: str) -> str:
    if fig is None:
        return ""
    return ('<div class="figure">' + fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                                                   config={"displaylogo": False, "responsive": True}) + "</div>")


def _slug(i: int, name: str) -> str:
    return f"b{i}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name)[:40]


def _opening(report: dict[str, Any]) -> str:
    """What was asked of which models, with which settings, when."""
    audit, tool = report["audit"], report["tool"]
    models = t.models_by_label(report)
    cand = t.candidate_label(report)
    refs, ctrls = t.role_labels(report, "reference"), t.role_labels(report, "control")

    def who(label: str) -> str:
        m = models.get(label)
        return f"<strong>{esc(label)}</strong> (<code>{esc(m['model_string'])}</code>)" if m else f"<strong>{esc(label)}</strong>"

    batteries = "; ".join(
        f"<strong>{esc(b['name'])}</strong> v{esc(b['version'])} ({esc(t.plural(b['n_prompts'], 'prompt'))}, "
        f"{esc(t.generation(b))})" for b in report["batteries"]) or "none"
    return (
        f"<p>On {esc(report['created_at'])}, {esc(tool['name'])} {esc(tool['version'])} asked the candidate "
        f"{who(cand)}, {'the reference' if len(refs) == 1 else 'the references'} {t.join([who(r) for r in refs])}"
        + (f" and {'the control' if len(ctrls) == 1 else 'the controls'} {t.join([who(c) for c in ctrls])}"
           if ctrls else " (no controls)")
        + f" the {'battery' if len(report['batteries']) == 1 else 'batteries'} {batteries}. "
        f"Audit seed {esc(audit['seed'])}"
        + (f", {esc(t.plural(audit['samples'], 'sample'))} per prompt for every battery" if audit.get("samples") else "")
        + ".</p>"
    )


def _headline(report: dict[str, Any]) -> str:
    """Per reference, the combined excess in words of magnitude (never a verdict)."""
    stats = report["statistics"]
    if not t.role_labels(report, "control"):
        return ("<p><strong>No controls were given, so no baseline exists:</strong> only similarity is reported, "
                "and it cannot be compared with how close independent models come.</p>")
    combined = report.get("combined") or []
    items = [f"<li>{esc(t.headline(c, t.candidate_label(report)))}"
             + (f" Permutation test: {esc(t.pvalue(c['test']))}." if c.get("test") else "") + "</li>"
             for c in combined]
    if not items:
        return ""
    weights = ", ".join(f"{b} {w:.2f}" for b, w in (combined[0].get("weights") or {}).items())
    return (f"<p>Combined over the batteries (weights {esc(weights)}), in {esc(t.level(stats))} intervals:</p>"
            f'<ul class="headline">{"".join(items)}</ul>')


def _claims_table(detail: dict[str, Any], roles: dict[str, str]) -> str:
    from .details import NO_CLAIM

    langs = detail["languages"]
    cells: dict[str, dict[str, str]] = {}
    for c in detail["claims"]:
        n = c["responses"]
        parts = [f'{esc(k)} <span class="share">{100 * v / n:.0f}% ({v}/{n})</span>'
                 for k, v in c["counts"].items()] if n else ["no responses"]
        cells.setdefault(c["model"], {})[c["language"]] = "<br>".join(parts)
    rows = [(roles.get(m, ""), [f"{esc(m)} ({esc(roles.get(m, ''))})"] + [cells[m].get(lang, "—") for lang in langs])
            for m in cells]
    return (_tag_table(["Model"] + [f"prompts in {esc(lang)}" for lang in langs], rows)
            + f'<p class="muted">Share of responses that claim each maker in the first person; "{esc(NO_CLAIM)}": '
              f"none was claimed.</p>")


def _quirk_tables(detail: dict[str, Any], order: list[str], roles: dict[str, str]) -> str:
    out = []
    for g in detail["groups"]:
        models = [m for m in order if m in g["answers"]]
        answers: list[str] = []
        for m in models:
            answers += [a for a in g["answers"][m] if a not in answers]
        totals = {m: sum(g["answers"][m].values()) for m in models}
        rows = []
        for a in answers:
            cells = [esc(a)]
            for m in models:
                k, n = g["answers"][m].get(a, 0), totals[m]
                share = k / n if n else 0.0
                cells.append(f'<td class="share" style="background:rgba(31,78,156,{0.55 * share:.2f})">'
                             f"{100 * share:.0f}% ({k})</td>" if k else '<td class="share">—</td>')
            rows.append(("", cells))
        out.append(f"<h5>{esc(g['group'])} <span class=\"muted\">(prompts {esc(', '.join(g['prompts']))})</span></h5>"
                   + _tag_table(["Answer"] + [f"{esc(m)} ({esc(roles.get(m, ''))})" for m in models], rows))
    return "".join(out)


def _ngram_table(detail: dict[str, Any]) -> str:
    out = []
    for s in detail["shared"]:
        if not s["ngrams"]:
            out.append(f"<p>No word {detail['n']}-gram is shared with {esc(s['reference'])} on a prompt without a "
                       f"control using it too.</p>")
            continue
        rows = [("", [f"<code>{esc(g['ngram'])}</code>", esc(g["shared_prompts"]),
                      esc(g["control_prompts"]) if g["control_prompts"] is not None else "n/a"]) for g in s["ngrams"]]
        out.append(f"<h5>shared with {esc(s['reference'])}</h5>"
                   + _tag_table([f"word {detail['n']}-gram", "prompts where candidate and reference used it and no "
                                 "control did", "prompts where any control used it"], rows))
    return "".join(out)


def _battery_statistics(report: dict[str, Any], battery: str) -> str:
    """The battery-specific statistics of report.json (``battery_statistics``, written by the
    scorers' own module), as tables: one row per reference, scalar fields and estimates."""
    out = []
    for s in report.get("battery_statistics") or []:
        if s.get("battery") != battery:
            continue
        for key, rows in s.items():
            if not (isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)):
                continue
            cols = [k for k, v in rows[0].items() if k != "what" and (isinstance(v, (str, int, float)) or
                                                                      (isinstance(v, dict) and "estimate" in v))]
            cells = []
            for r in rows:
                row = []
                for k in cols:
                    v = r.get(k)
                    row.append(_num_cell(v) if isinstance(v, dict) else
                               f'<td class="num">{esc(f"{v:.3g}")}</td>' if isinstance(v, float) else esc(v))
                cells.append(("", row))
            what = rows[0].get("what") or s.get("what") or ""
            out.append(f"<h5>{esc(s.get('kind', ''))}: {esc(key.replace('_', ' '))}</h5>"
                       + (f'<p class="muted">{esc(what)}</p>' if what else "")
                       + _tag_table([esc(c.replace("_", " ")) for c in cols], cells))
    return ("<h4>Battery-specific statistics</h4>" + "".join(out)) if out else ""


def _battery_section(report: dict[str, Any], i: int, b: dict[str, Any]) -> str:
    roles = {m["label"]: m["role"] for m in report["models"]}
    order = [m["label"] for m in report["models"]]
    slug = _slug(i, b["name"])
    parts = [f'<section id="{slug}"><h3>{esc(b["name"])}</h3>',
             f"<p>{esc(b['description'])} Scorer <code>{esc(b['scorer'])}</code>; {esc(t.plural(b['n_prompts'], 'prompt'))}; "
             f"{esc(t.generation(b))}.</p>",
             _figure(F.battery_forest_figure(report, b["name"]), f"{slug}-forest")]
    for d in report.get("details") or []:
        if d["battery"] != b["name"]:
            continue
        if d["kind"] == "self_id":
            parts += ["<h4>Who each model claims to be</h4>", _figure(F.self_id_figure(d, roles), f"{slug}-self-id"),
                      _claims_table(d, roles)]
        elif d["kind"] == "quirks":
            parts += ["<h4>Answer distributions</h4>",
                      '<p class="muted">The kinds of question on which the candidate\'s answers match a reference\'s '
                      "most beyond the controls' are drawn first; every kind is in the tables below.</p>",
                      _figure(F.quirks_figure(d, report), f"{slug}-quirks"),
                      f"<details><summary>Answer tables for all {len(d['groups'])} kinds of question</summary>"
                      f"{_quirk_tables(d, order, roles)}</details>"]
        elif d["kind"] == "ngram":
            parts += [f"<h4>Top shared distinctive word {esc(d['n'])}-grams</h4>",
                      _figure(F.ngram_figure(d), f"{slug}-ngrams"), _ngram_table(d)]
    parts.append(_battery_statistics(report, b["name"]))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _definitions(report: dict[str, Any]) -> str:
    stats = report["statistics"]
    items = [
        ("similarity s(C, R)", "the battery's per-prompt score between two models' responses, averaged over all "
         "cross pairs of their samples on the prompt, then over prompts; in [0, 1]. self_id: the share of response "
         "pairs that claim a common maker; quirks: the rate at which two normalised answers agree; ngram: the mean "
         "Jaccard index of word 1-, 2- and 3-gram sets."),
        ("baseline", stats["baseline"]),
        ("excess", "similarity minus baseline, paired by prompt (the interval resamples prompts, not samples)."),
        ("rank excess", "per prompt, the share of baseline similarities that the candidate's similarity to the "
         "reference exceeds (ties half), minus 1/2, averaged over prompts: 0 when the candidate is like the "
         "controls, +1/2 when it is closer to the reference than every control on every prompt."),
        ("ceiling c(R)", "the reference's similarity to its own fresh samples; normalised score (s - b) / (c - b), "
         "reported only when c - b is clearly positive."),
        ("controls' own excess", "each control treated as the candidate, with the other controls as its baseline "
         "(leave-one-out): what no relation looks like on the same prompts."),
        ("combined", (stats.get("combined_scale") or "") + "; weighted over batteries inside each bootstrap replicate."),
        ("intervals", f"{stats['method']}; {t.level(stats)} level, {stats['n_resamples']} resamples, seed {stats['seed']}."),
    ]
    if stats.get("test"):
        items.append(("permutation test", f"{stats['test']}. Reported beside the intervals, never as a verdict."))
    return "<dl>" + "".join(f"<dt><strong>{esc(k)}</strong></dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def _usage(report: dict[str, Any]) -> str:
    usage = report.get("usage")
    if not usage:
        return "<p>No usage recorded.</p>"
    fmt = lambda v, f="{}": "n/a" if v is None else f.format(v)  # noqa: E731
    rows = [("", [esc(m), esc(u["responses"]), esc(fmt(u["tokens_in"])), esc(fmt(u["tokens_out"])),
                  esc(fmt(u["seconds"], "{:.1f}")), esc(u["api_calls"]), esc(fmt(u["cost"], "${:.4f}"))])
            for m, u in usage["per_model"].items()]
    tot = usage["total"]
    rows.append(("", ["<strong>all</strong>", esc(tot["responses"]), esc(fmt(tot["tokens_in"])), esc(fmt(tot["tokens_out"])),
                      esc(fmt(tot["seconds"], "{:.1f}")), esc(tot["api_calls"]), esc(fmt(tot["cost"], "${:.4f}"))]))
    return (_tag_table(["Model", "Responses", "Tokens in", "Tokens out", "Generation seconds", "API calls", "Cost (USD)"],
                       rows) + f'<p class="muted">{esc(usage["note"])}.</p>')


def render_html(report: dict[str, Any]) -> str:
    """The self-contained HTML view of a (validated) report dict."""
    cand = t.candidate_label(report)
    caveats = "".join(f"<li>{esc(c)}</li>" for c in report["caveats"]) or "<li>None recorded.</li>"
    batteries = "\n".join(_battery_section(report, i, b) for i, b in enumerate(report["batteries"]))
    nav = "".join(f'<a href="#{_slug(i, b["name"])}">{esc(b["name"])}</a>' for i, b in enumerate(report["batteries"]))
    body = f"""<h1>provenance audit: {esc(cand)}</h1>
<nav><a href="#summary">Summary</a><a href="#caveats">Caveats</a>{nav}<a href="#results">All results</a>
<a href="#evidence">Evidence</a><a href="#methods">Methods and manifest</a></nav>
<section id="summary"><h2>Summary</h2>
{_opening(report)}
{_headline(report)}
{_figure(F.combined_figure(report), "combined-plot")}
<details><summary>How the numbers are made, and every battery's estimates in words</summary>
{_summary(report)}
</details>
</section>
<section id="caveats" class="caveats"><h2>Caveats</h2><ul>{caveats}</ul></section>
<section id="batteries"><h2>By battery</h2>
{_figure(F.forest_figure(report), "forest-plot") or "<p>No excess estimates to plot.</p>"}
{batteries}
</section>
<section id="results"><h2>All results</h2>
{_results_table(report)}
</section>
<section id="evidence"><h2>Evidence</h2>
<p class="muted">Verbatim responses behind the top findings (the prompts where the candidate is closest to a reference
beyond the controls), each with the content hash (SHA-256 of the text) and the store key that tie it to the store.
Model output is shown as text, never interpreted.</p>
{_evidence(report)}
</section>
<section id="methods"><h2>Methods and manifest</h2>
<h3>Definitions</h3>
{_definitions(report)}
{_methods(report)}
<h3>Usage and cost</h3>
{_usage(report)}
</section>
<footer class="muted"><p>Rendered from report.json (schema version {esc(report['schema_version'])}).
Re-render: <code>{esc(t.RE_RENDER)}</code>; check against the store: <code>provenance verify AUDIT_DIR</code>.</p></footer>"""
    return page(f"provenance audit: {cand}", body, report)


def page(title: str, body: str, report: dict[str, Any]) -> str:
    """A whole page around ``body`` (already-escaped HTML): plotly.js inline, and a
    Content-Security-Policy that runs only scripts carrying this page's nonce (derived from
    the record, so a rendering is reproducible) and connects nowhere."""
    import hashlib

    from plotly.offline import get_plotlyjs

    nonce = hashlib.sha256(json.dumps(report, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]
    body = re.sub(r'<script(?: type="text/javascript")?>', f'<script nonce="{nonce}">', body)
    csp = CSP.replace("script-src 'unsafe-inline'", f"script-src 'nonce-{nonce}'")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
<script nonce="{nonce}">{get_plotlyjs()}</script>
</head>
<body>
{body}
</body>
</html>
"""
