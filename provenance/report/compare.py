"""report.md and report.html of a comparison (pool mode, ``kind: compare``).

The similarity matrix (combined over batteries, with intervals in the JSON and on hover) and,
per candidate, the ranking of possible teachers with how often each ranks first across
bootstrap replicates. Words describe magnitude and frequency, never a verdict. Every string
from the record is escaped.
"""

from __future__ import annotations

import html as _html
from typing import Any

from . import _text as t
from .markdown import _table, cell


def esc(s: Any) -> str:
    return _html.escape(str(s), quote=True)


def _ranking_rows(r: dict[str, Any], top: int = 10) -> list[list[str]]:
    return [[str(e["rank"]), e["reference"], t.value_ci(e["score"]), f"{100 * e['p_first']:.1f}%",
             f"{e['mean_rank']:.1f}"] for e in r["entries"][:top]]


def _intro(report: dict[str, Any]) -> list[str]:
    st, pool = report["statistics"], report["pool"]
    return [
        f"{len(pool['models'])} models on {len(pool['batteries'])} {'battery' if len(pool['batteries']) == 1 else 'batteries'} "
        f"({', '.join(pool['batteries'])}); seed {pool['seed']}. Intervals at {t.level(st)} by {st['method']} "
        f"({st['n_resamples']} resamples, seed {st['seed']}). Combined similarity is the weighted mean over batteries "
        f"(weights {', '.join(f'{b} {w:.2f}' for b, w in st['weights'].items())}), in the same replicates.",
        f"Controls for the rankings: {', '.join(pool['controls']) or 'none'}.",
    ]


def render_compare_markdown(report: dict[str, Any]) -> str:
    pool = report["pool"]
    out = [f"# provenance comparison of {len(pool['models'])} models", ""]
    out += [cell(x) for x in _intro(report)]
    out += ["", "## Teacher rankings", ""]
    if not report["rankings"]:
        out += ["No candidate was chosen (`--candidate`), so no ranking.", ""]
    for r in report["rankings"]:
        out += [f"### {cell(r['candidate'])}", "", f"Ranked by {cell(r['score'])}; share of bootstrap replicates in "
                f"which each model ranks first.", ""]
        out += _table(["Rank", "Model", f"Score ({t.level(report['statistics'])} CI)", "Ranks first", "Mean rank"],
                      [[cell(c) for c in row] for row in _ranking_rows(r)])
        out += [""]
    out += ["## Most similar pairs (combined)", ""]
    pairs = sorted(report["pairs"], key=lambda p: -((p["combined"] or {}).get("estimate") or -1))
    out += _table(["Model", "Model", f"Combined similarity ({t.level(report['statistics'])} CI)"]
                  + [cell(b) for b in pool["batteries"]],
                  [[cell(p["a"]), cell(p["b"]), t.value_ci(p["combined"])]
                   + [t.value_ci(p["by_battery"].get(b)) for b in pool["batteries"]] for p in pairs[:25]])
    out += ["", f"All {len(report['pairs'])} pairs, with intervals per battery, are in report.json.", "", "## Caveats", ""]
    out += [f"- {cell(c)}" for c in report["caveats"]] or ["- none recorded"]
    out += ["", "## Models", ""]
    out += _table(["Label", "Model", "Identity hash"],
                  [[cell(m["label"]), cell(m["model_string"]), cell(m["identity_hash"])] for m in report["models"]])
    out += ["", f"Re-render report.md and report.html from the record: `{t.RE_RENDER}`", ""]
    return "\n".join(out)


def render_compare_html(report: dict[str, Any]) -> str:
    from . import figures as F
    from .html import page

    pool = report["pool"]
    labels = pool["models"]

    def heat(battery, div_id):
        fig = F.heatmap_figure(report, battery, selector=True)
        return "" if fig is None else fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                                                  config={"displaylogo": False, "responsive": True})

    heat_all = heat(None, "similarity-matrix") or "<p>No pair has a similarity estimate.</p>"
    level = esc(t.level(report["statistics"]))
    rankings = []
    for r in report["rankings"]:
        rows = "".join("<tr>" + "".join(f'<td class="num">{esc(c)}</td>' if k != 1 else f"<td>{esc(c)}</td>"
                                        for k, c in enumerate(row)) + "</tr>" for row in _ranking_rows(r))
        rankings.append(
            f"<h3>{esc(r['candidate'])}</h3><p>Ranked by {esc(r['score'])}; the share of bootstrap replicates in "
            f"which each model ranks first.</p><table><thead><tr><th>Rank</th><th>Model</th><th>Score [{level} CI]"
            f"</th><th>Ranks first</th><th>Mean rank</th></tr></thead><tbody>{rows}</tbody></table>")
    caveats = "".join(f"<li>{esc(c)}</li>" for c in report["caveats"]) or "<li>None recorded.</li>"
    models = "".join(f"<tr><td>{esc(m['label'])}</td><td><code>{esc(m['model_string'])}</code></td>"
                     f"<td><code>{esc(m['identity_hash'])}</code></td></tr>" for m in report["models"])
    batteries = "".join(f"<tr><td>{esc(b['name'])}</td><td>{esc(b['version'])}</td><td>{esc(b['scorer'])}</td>"
                        f"<td>{esc(b['n_prompts'])}</td><td><code>{esc(b['content_hash'])}</code></td></tr>"
                        for b in report["batteries"])
    body = f"""<h1>provenance comparison of {len(labels)} models</h1>
<section id="summary"><h2>Summary</h2><p>Created {esc(report['created_at'])} by {esc(report['tool']['name'])}
{esc(report['tool']['version'])}.</p>{''.join(f'<p>{esc(x)}</p>' for x in _intro(report))}</section>
<section id="caveats"><h2>Caveats</h2><ul>{caveats}</ul></section>
<section id="rankings"><h2>Teacher rankings</h2>{''.join(rankings) or '<p>No candidate was chosen, so no ranking.</p>'}</section>
<section id="matrix"><h2>Similarity matrix</h2><p class="muted">Combined over batteries; the buttons show each
battery's own matrix.</p><div class="figure">{heat_all}</div></section>
<section id="methods"><h2>Models and batteries</h2><table><thead><tr><th>Label</th><th>Model string</th>
<th>Identity hash</th></tr></thead><tbody>{models}</tbody></table>
<table><thead><tr><th>Battery</th><th>Version</th><th>Scorer</th><th>Prompts</th><th>Content hash</th></tr></thead>
<tbody>{batteries}</tbody></table></section>
<footer class="muted"><p>Rendered from report.json (schema version {esc(report['schema_version'])}).
Re-render: <code>{esc(t.RE_RENDER)}</code></p></footer>"""
    return page(f"provenance comparison of {len(labels)} models", body, report)
