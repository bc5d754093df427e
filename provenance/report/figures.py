"""Plotly figures for report.html.

Every string that reaches a figure is HTML-escaped first: plotly renders a subset of HTML in
labels and hover text, and model and battery names are untrusted. Plotly shows the escaped
entities as the original characters.
"""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

from . import _text as t

CANDIDATE_COLOUR = "#1f4e9c"
CONTROL_COLOUR = "#8a8a8a"


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
