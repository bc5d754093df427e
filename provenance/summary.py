"""Plain-words lines for the terminal: magnitudes with intervals, never verdicts."""

from __future__ import annotations


def fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def interval(est: dict | None) -> str:
    """'0.21 (95% CI 0.15 to 0.27, 40 prompts)' from an Estimate dict."""
    if not est:
        return "n/a"
    level = round(100 * est["confidence_level"])
    return (f"{fmt(est['estimate'])} ({level}% CI {fmt(est['ci_low'])} to {fmt(est['ci_high'])}, "
            f"{est['n_prompts']} prompts)")


def summary_lines(report: dict) -> list[str]:
    a = report["audit"]
    lines = [f"candidate {a['candidate']} against {', '.join(a['references'])}"
             + (f" with controls {', '.join(a['controls'])}" if a["controls"] else " (no controls)")]
    for r in report["results"]:
        head = f"  {r['battery']:8s} vs {r['reference']}: similarity {fmt(r['similarity']['estimate'])}"
        if r["excess"]:
            head += f", baseline {fmt(r['baseline']['estimate'])}, excess {interval(r['excess'])}"
        lines.append(head)
        for c in r["controls"]:
            if c["excess"]:
                lines.append(f"  {'':8s}    control {c['control']}: excess {interval(c['excess'])}")
    for c in report["caveats"]:
        lines.append(f"  note: {c}")
    return lines
