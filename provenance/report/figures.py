"""Plotly figures of a report: the charts of report.html, also returned by the notebook API.

Each function takes the report dict (or one of its ``details`` entries) and returns a
``plotly.graph_objects.Figure``, or None when there is nothing to plot.

    forest_figure          excess per battery and reference, candidate beside the controls
    combined_figure        excess combined over batteries, per reference
    battery_forest_figure  one battery: similarity, baseline and excess side by side, with CIs
    self_id_figure         who each model claims to be, by prompt language
    quirks_figure          answer distributions of the most telling kinds of question
    ngram_figure           shared distinctive n-grams per reference
    heatmap_figure         pool mode (``kind: compare``): pairwise similarity matrix

Every string that reaches a figure is HTML-escaped first: plotly renders a subset of HTML in
labels and hover text, and model names, battery names and above all model output are
untrusted. Plotly shows the escaped entities as the original characters.
"""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

from . import _text as t

CANDIDATE_COLOUR = "#1f4e9c"
REFERENCE_COLOUR = "#b5651d"
CONTROL_COLOUR = "#8a8a8a"
NO_CLAIM_COLOUR = "#d9d9d9"
PALETTE = ["#1f4e9c", "#b5651d", "#2a9d8f", "#8e44ad", "#c0392b", "#e9c46a", "#264653", "#f4a261", "#6d597a",
           "#43aa8b", "#577590", "#f94144"]
ROLE_COLOUR = {"candidate": CANDIDATE_COLOUR, "reference": REFERENCE_COLOUR, "control": CONTROL_COLOUR}


def esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _row(label: str, est: dict[str, Any], d: int) -> dict[str, Any] | None:
    if not t.is_num(est.get("estimate")):
        return None
    has_ci = t.is_num(est.get("ci_low")) and t.is_num(est.get("ci_high"))
    return {
        "y": label,
        "x": est["estimate"],
        "plus": est["ci_high"] - est["estimate"] if has_ci else 0.0,
        "minus": est["estimate"] - est["ci_low"] if has_ci else 0.0,
        "hover": html.escape(t.describe(est, "excess similarity")),
        "has_ci": has_ci,
    }


def forest_figure(report: dict[str, Any]) -> go.Figure | None:
    """Excess similarity with its interval per battery and reference, candidate beside controls.

    Control rows show each control's own excess against the same reference (leave-one-out),
    so a reader sees how far independent models stray from zero. None when nothing to plot.
    """
    cand = t.candidate_label(report)
    groups: dict[str, list[dict[str, Any]]] = {"candidate": [], "control": []}
    order: list[str] = []
    for r in report["results"]:
        head = f"{r['battery']} · {r['reference']}"
        rows = [("candidate", f"{head} · {cand}", r["excess"])]
        rows += [("control", f"{head} · {c['control']} (control)", c["excess"]) for c in r["controls"]]
        for role, label, est in rows:
            row = _row(html.escape(label), est or {}, t.decimals(est))
            if row is not None:
                groups[role].append(row)
                order.append(row["y"])
    if not order:
        return None

    fig = go.Figure()
    for role, colour, size in (("control", CONTROL_COLOUR, 7), ("candidate", CANDIDATE_COLOUR, 10)):
        rows = groups[role]
        if not rows:
            continue
        fig.add_trace(go.Scatter(
            x=[r["x"] for r in rows],
            y=[r["y"] for r in rows],
            mode="markers",
            name=html.escape(cand) if role == "candidate" else "controls (leave-one-out)",
            marker={"color": colour, "size": size,
                    "symbol": ["circle" if r["has_ci"] else "circle-open" for r in rows]},
            error_x={"type": "data", "symmetric": False, "array": [r["plus"] for r in rows],
                     "arrayminus": [r["minus"] for r in rows], "color": colour, "thickness": 2},
            hovertext=[r["hover"] for r in rows],
            hoverinfo="text",
        ))
    fig.add_vline(x=0, line={"color": "#444", "width": 1, "dash": "dot"})
    level = t.level(report["statistics"])
    fig.update_layout(
        title={"text": f"Excess similarity over baseline, {level} CI (open marker: no interval)"},
        xaxis={"title": {"text": "excess similarity (similarity minus baseline)"}, "zeroline": False},
        yaxis={"categoryorder": "array", "categoryarray": order, "autorange": "reversed", "automargin": True},
        height=160 + 30 * len(order),
        margin={"l": 20, "r": 20, "t": 60, "b": 50},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2 if len(order) > 4 else -0.5},
    )
    return fig


# --- shared helpers ---------------------------------------------------------------------------

def _roles(report: dict[str, Any]) -> dict[str, str]:
    return {m["label"]: m.get("role", "") for m in report.get("models", [])}


def _layout(fig: go.Figure, title: str, height: int, **kw) -> go.Figure:
    fig.update_layout(title={"text": esc(title)}, height=height, template="plotly_white",
                      margin={"l": 20, "r": 20, "t": 60, "b": 50}, **kw)
    return fig


def _interval_trace(rows: list[tuple[str, dict[str, Any] | None]], name: str, colour: str, what: str,
                    **kw) -> go.Scatter | None:
    """A marker with horizontal error bars per (escaped y label, estimate dict)."""
    pts = [(y, e) for y, e in rows if e and t.is_num(e.get("estimate"))]
    if not pts:
        return None
    has = [t.is_num(e.get("ci_low")) and t.is_num(e.get("ci_high")) for _, e in pts]
    return go.Scatter(
        x=[e["estimate"] for _, e in pts], y=[y for y, _ in pts], mode="markers", name=esc(name),
        marker={"color": colour, "size": kw.pop("size", 9), "symbol": ["circle" if h else "circle-open" for h in has]},
        error_x={"type": "data", "symmetric": False, "color": colour, "thickness": 2,
                 "array": [e["ci_high"] - e["estimate"] if h else 0.0 for (_, e), h in zip(pts, has)],
                 "arrayminus": [e["estimate"] - e["ci_low"] if h else 0.0 for (_, e), h in zip(pts, has)]},
        hovertext=[esc(t.describe(e, what)) for _, e in pts], hoverinfo="text", **kw)


# --- estimates --------------------------------------------------------------------------------

def battery_forest_figure(report: dict[str, Any], battery: str) -> go.Figure | None:
    """Similarity, baseline and excess for one battery, side by side, one row per reference
    (candidate) and per control against that reference (leave-one-out), with their intervals."""
    from plotly.subplots import make_subplots

    cand = t.candidate_label(report)
    results = [r for r in report["results"] if r["battery"] == battery]
    if not results:
        return None
    order: list[str] = []
    cand_rows: dict[str, list] = {"similarity": [], "baseline": [], "excess": []}
    ctl_rows: dict[str, list] = {"similarity": [], "baseline": [], "excess": []}
    for r in results:
        y = esc(f"{cand} vs {r['reference']}")
        order.append(y)
        for q in cand_rows:
            cand_rows[q].append((y, r.get(q)))
        for c in r["controls"]:
            yc = esc(f"{c['control']} (control) vs {r['reference']}")
            order.append(yc)
            ctl_rows["similarity"].append((yc, c.get("similarity")))
            ctl_rows["excess"].append((yc, c.get("excess")))
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=["similarity", "baseline (controls)", "excess over baseline"])
    any_trace = False
    for col, q in enumerate(("similarity", "baseline", "excess"), start=1):
        for rows, name, colour, size in ((ctl_rows[q], "controls (leave-one-out)", CONTROL_COLOUR, 7),
                                         (cand_rows[q], cand, CANDIDATE_COLOUR, 10)):
            tr = _interval_trace(rows, name, colour, q, size=size, showlegend=col == 3, legendgroup=name)
            if tr is not None:
                fig.add_trace(tr, row=1, col=col)
                any_trace = True
    if not any_trace:
        return None
    fig.add_vline(x=0, line={"color": "#444", "width": 1, "dash": "dot"}, row=1, col=3)
    fig.update_xaxes(matches="x", row=1, col=2)  # baseline on the similarity axis
    fig.update_yaxes(categoryorder="array", categoryarray=order, autorange="reversed", automargin=True)
    level = t.level(report["statistics"])
    return _layout(fig, f"{battery}: similarity, baseline and excess, {level} CI (open marker: no interval)",
                   180 + 32 * len(order), legend={"orientation": "h", "y": -0.25 if len(order) > 3 else -0.6})


def combined_figure(report: dict[str, Any]) -> go.Figure | None:
    """The excess combined over batteries, per reference: candidate beside each control."""
    combined = report.get("combined") or []
    cand = t.candidate_label(report)
    cand_rows, ctl_rows, order = [], [], []
    for c in combined:
        y = esc(f"{cand} vs {c['reference']}")
        order.append(y)
        cand_rows.append((y, c.get("excess")))
        for k in c.get("controls", []):
            yc = esc(f"{k['control']} (control) vs {c['reference']}")
            order.append(yc)
            ctl_rows.append((yc, k.get("excess")))
    fig = go.Figure()
    scale = combined[0]["scale"] if combined else "similarity"
    for rows, name, colour, size in ((ctl_rows, "controls (leave-one-out)", CONTROL_COLOUR, 7),
                                     (cand_rows, cand, CANDIDATE_COLOUR, 11)):
        tr = _interval_trace(rows, name, colour, f"combined {scale}-scale excess", size=size)
        if tr is not None:
            fig.add_trace(tr)
    if not fig.data:
        return None
    fig.add_vline(x=0, line={"color": "#444", "width": 1, "dash": "dot"})
    fig.update_yaxes(categoryorder="array", categoryarray=order, autorange="reversed", automargin=True)
    fig.update_xaxes(title={"text": esc(f"combined excess ({scale} scale)")}, zeroline=False)
    return _layout(fig, f"Excess combined over batteries, {t.level(report['statistics'])} CI",
                   170 + 30 * len(order), legend={"orientation": "h", "y": -0.3 if len(order) > 3 else -0.7})


# --- what the models said -----------------------------------------------------------------------

def _colours(categories: list[str], grey: tuple[str, ...] = ()) -> dict[str, str]:
    out, i = {}, 0
    for c in categories:
        if c in grey:
            out[c] = NO_CLAIM_COLOUR
        else:
            out[c] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def self_id_figure(detail: dict[str, Any], roles: dict[str, str] | None = None) -> go.Figure | None:
    """Share of each model's responses claiming each maker. One prompt language: one
    horizontal bar per model. Several: one row per model, one stacked bar per language."""
    from plotly.subplots import make_subplots

    from .details import NO_CLAIM

    rows = [c for c in detail["claims"] if c["responses"]]
    if not rows:
        return None
    roles = roles or {}
    langs = detail["languages"]
    models = list(dict.fromkeys(c["model"] for c in rows))
    name = {m: esc(m + (f" ({roles[m]})" if roles.get(m) else "")) for m in models}
    cats: list[str] = []
    for c in rows:
        cats += [k for k in c["counts"] if k not in cats and k != NO_CLAIM]
    cats.append(NO_CLAIM)
    colour = _colours(cats, grey=(NO_CLAIM,))

    def hover(c, k):
        return esc(f"{c['model']} ({c['language']}): {k} in {c['counts'].get(k, 0)} of {c['responses']} responses")

    legend = {"orientation": "h", "y": -0.12 if len(langs) > 1 else (-0.25 if len(rows) > 4 else -0.6)}
    if len(langs) == 1:
        fig = go.Figure()
        for k in cats:
            xs = [c["counts"].get(k, 0) / c["responses"] for c in rows]
            if any(xs):
                fig.add_trace(go.Bar(x=xs, y=[name[c["model"]] for c in rows], orientation="h", name=esc(k),
                                     marker={"color": colour[k]}, hovertext=[hover(c, k) for c in rows],
                                     hoverinfo="text"))
        fig.update_xaxes(title={"text": "share of responses"}, range=[0, 1])
        fig.update_yaxes(autorange="reversed", automargin=True)
        fig.update_layout(barmode="stack")
        return _layout(fig, f"{detail['battery']}: who each model claims to be (prompts in {langs[0]})",
                       160 + 28 * len(rows), legend=legend)
    fig = make_subplots(rows=len(models), cols=1, shared_xaxes=True, vertical_spacing=0.35 / len(models),
                        subplot_titles=[name[m] for m in models])
    shown: set[str] = set()
    for i, m in enumerate(models, start=1):
        mine = [c for c in rows if c["model"] == m]
        for k in cats:
            ys = [c["counts"].get(k, 0) / c["responses"] for c in mine]
            if any(ys):
                fig.add_trace(go.Bar(x=[esc(c["language"]) for c in mine], y=ys, name=esc(k), legendgroup=esc(k),
                                     showlegend=k not in shown, marker={"color": colour[k]},
                                     hovertext=[hover(c, k) for c in mine], hoverinfo="text"), row=i, col=1)
                shown.add(k)
        fig.update_yaxes(range=[0, 1], tickvals=[0, 0.5, 1], row=i, col=1)
    fig.update_xaxes(categoryorder="array", categoryarray=[esc(x) for x in langs])
    fig.update_layout(barmode="stack")
    return _layout(fig, f"{detail['battery']}: who each model claims to be, by prompt language (share of responses)",
                   140 + 120 * len(models), legend=legend)


def quirk_group_scores(detail: dict[str, Any], candidate: str, references: list[str],
                       controls: list[str]) -> dict[str, float]:
    """Per kind of question: the largest, over references, of the candidate's answer-match
    rate with the reference minus the controls' mean match rate with it (how telling it is)."""
    from .details import match_rate

    out = {}
    for g in detail["groups"]:
        a = g["answers"]
        best = None
        for ref in references:
            m = match_rate(a.get(candidate, {}), a.get(ref, {}))
            base = [match_rate(a.get(k, {}), a.get(ref, {})) for k in controls]
            base = [b for b in base if b is not None]
            if m is None:
                continue
            gap = m - (sum(base) / len(base) if base else 0.0)
            best = gap if best is None else max(best, gap)
        out[g["group"]] = best if best is not None else float("-inf")
    return out


def quirks_figure(detail: dict[str, Any], report: dict[str, Any], groups: int = 5) -> go.Figure | None:
    """Answer distributions of the ``groups`` most telling kinds of question (see
    :func:`quirk_group_scores`): per kind, one stacked bar per model, each segment an answer."""
    from plotly.subplots import make_subplots

    from .details import NO_ANSWER, OTHER

    roles = _roles(report)
    order = [m for m in roles if any(m in g["answers"] for g in detail["groups"])]
    cand = t.candidate_label(report) if "audit" in report else None
    refs = t.role_labels(report, "reference")
    ctls = t.role_labels(report, "control")
    scores = quirk_group_scores(detail, cand, refs, ctls) if cand else {}
    chosen = sorted(detail["groups"], key=lambda g: -scores.get(g["group"], 0.0))[:groups]
    if not chosen or not order:
        return None
    fig = make_subplots(rows=len(chosen), cols=1, vertical_spacing=0.06 if len(chosen) > 1 else 0.0,
                        subplot_titles=[esc(g["group"]) for g in chosen])
    for i, g in enumerate(chosen, start=1):
        answers: list[str] = []
        for m in order:
            answers += [a for a in g["answers"].get(m, {}) if a not in answers and a not in (OTHER, NO_ANSWER)]
        colour = _colours(answers + [OTHER, NO_ANSWER], grey=(OTHER, NO_ANSWER))
        for a in answers + [OTHER, NO_ANSWER]:
            xs, texts, hover = [], [], []
            for m in order:
                counts = g["answers"].get(m, {})
                n = sum(counts.values())
                xs.append(counts.get(a, 0) / n if n else 0.0)
                texts.append(esc(a[:24]) if counts.get(a) else "")
                hover.append(esc(f"{m}: {a!s} in {counts.get(a, 0)} of {n} responses"))
            if not any(xs):
                continue
            fig.add_trace(go.Bar(x=xs, y=[esc(f"{m} ({roles[m]})" if roles.get(m) else m) for m in order],
                                 orientation="h", marker={"color": colour[a]}, text=texts, textposition="inside",
                                 insidetextanchor="middle", textangle=0, hovertext=hover, hoverinfo="text", showlegend=False),
                          row=i, col=1)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(fig, f"{detail['battery']}: answers of each model, the {len(chosen)} most telling kinds of "
                   f"question", 120 + len(chosen) * (40 + 24 * len(order)))


def ngram_figure(detail: dict[str, Any], top: int = 10) -> go.Figure | None:
    """Per reference, the prompts on which the candidate and the reference shared each of the
    top distinctive n-grams (no control used it on that prompt)."""
    from plotly.subplots import make_subplots

    shared = [s for s in detail["shared"] if s["ngrams"]]
    if not shared:
        return None
    fig = make_subplots(rows=1, cols=len(shared), horizontal_spacing=0.25 / max(1, len(shared) - 1) if len(shared) > 1
                        else 0.0, subplot_titles=[esc(f"shared with {s['reference']}") for s in shared])
    for j, s in enumerate(shared, start=1):
        ng = s["ngrams"][:top]
        fig.add_trace(go.Bar(
            x=[g["shared_prompts"] for g in ng], y=[esc(g["ngram"]) for g in ng], orientation="h",
            marker={"color": REFERENCE_COLOUR}, showlegend=False, hoverinfo="text",
            hovertext=[esc(f"'{g['ngram']}': shared on {g['shared_prompts']} prompts where no control used it"
                           + (f"; controls used it on {g['control_prompts']} prompts" if g["control_prompts"] is not None
                              else "")) for g in ng]), row=1, col=j)
        fig.update_yaxes(autorange="reversed", automargin=True, row=1, col=j)
        fig.update_xaxes(title={"text": "prompts"}, row=1, col=j)
    return _layout(fig, f"{detail['battery']}: shared distinctive word {detail['n']}-grams",
                   140 + 22 * max(len(s["ngrams"][:top]) for s in shared))


# --- pool mode ----------------------------------------------------------------------------------

def _heatmap_z(report: dict[str, Any], battery: str | None):
    labels = report["pool"]["models"]
    idx = {m: i for i, m in enumerate(labels)}
    n = len(labels)
    z: list[list[float | None]] = [[None] * n for _ in range(n)]
    hover = [[""] * n for _ in range(n)]
    what = "combined similarity" if battery is None else f"similarity ({battery})"
    for p in report["pairs"]:
        e = p["combined"] if battery is None else p["by_battery"].get(battery)
        if e is None or not t.is_num(e.get("estimate")) or p["a"] not in idx or p["b"] not in idx:
            continue
        i, j = idx[p["a"]], idx[p["b"]]
        z[i][j] = z[j][i] = e["estimate"]
        hover[i][j] = hover[j][i] = esc(f"{p['a']} / {p['b']}: {t.describe(e, what)}")
    return z, hover


def heatmap_figure(report: dict[str, Any], battery: str | None = None, *, selector: bool = False) -> go.Figure | None:
    """Pool mode: the matrix of pairwise similarities (combined over batteries, or one
    ``battery``), interval on hover. Works on a ``kind: compare`` report. ``selector`` adds
    buttons that switch between the combined matrix and each battery's (one figure, one trace)."""
    z, hover = _heatmap_z(report, battery)
    if all(v is None for row in z for v in row):
        return None
    n = len(z)
    safe = [esc(m) for m in report["pool"]["models"]]
    fig = go.Figure(go.Heatmap(z=z, x=safe, y=safe, hovertext=hover, hoverinfo="text", colorscale="Blues",
                               colorbar={"title": {"text": "similarity"}}))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True, tickangle=-45)
    title = "Pairwise " + ("combined similarity" if battery is None else f"similarity ({battery})")
    if selector and battery is None:
        buttons = []
        for b in [None, *report["pool"]["batteries"]]:
            zb, hb = _heatmap_z(report, b)
            name = "combined" if b is None else b
            buttons.append({"label": esc(name), "method": "update",
                            "args": [{"z": [zb], "hovertext": [hb]},
                                     {"title": {"text": esc(f"Pairwise similarity ({name}; hover for the interval)")}}]})
        fig.update_layout(updatemenus=[{"type": "buttons", "direction": "right", "x": 1, "xanchor": "right",
                                        "y": 1.0, "yanchor": "bottom", "pad": {"b": 4}, "buttons": buttons,
                                        "showactive": True}])
    fig = _layout(fig, f"{title} (hover for the interval)", 300 + 22 * n)
    fig.update_layout(margin={"t": 90})
    return fig
