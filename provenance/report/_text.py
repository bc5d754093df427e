"""Plain-word phrases shared by the Markdown and HTML views.

Phrases return unescaped text; each view escapes for its own format. They describe
magnitude and where an interval lies relative to zero, never a verdict.
"""

from __future__ import annotations

import math
from typing import Any

RE_RENDER = "python -m provenance.report report.json"


def is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def decimals(est: dict[str, Any] | None) -> int:
    """Enough decimals to show the interval's width: 2 for wide intervals, up to 4."""
    if not est or not (is_num(est.get("ci_low")) and is_num(est.get("ci_high"))):
        return 2
    half = (est["ci_high"] - est["ci_low"]) / 2
    if half <= 0:
        return 4
    return int(min(4, max(2, -math.floor(math.log10(half)))))


def num(x, d: int = 2) -> str:
    return f"{x:.{d}f}" if is_num(x) else "n/a"


def value_ci(est: dict[str, Any] | None) -> str:
    """'0.21 [0.15, 0.27]' for tables; 'n/a' when absent."""
    if not est or not is_num(est.get("estimate")):
        return "n/a"
    d = decimals(est)
    if is_num(est.get("ci_low")) and is_num(est.get("ci_high")):
        return f"{num(est['estimate'], d)} [{num(est['ci_low'], d)}, {num(est['ci_high'], d)}]"
    return f"{num(est['estimate'], d)} [no interval]"


def level(est_or_stats: dict[str, Any]) -> str:
    """0.95 -> '95%'."""
    return f"{100 * est_or_stats['confidence_level']:g}%"


def describe(est: dict[str, Any] | None, what: str) -> str:
    """'excess similarity 0.21 (95% CI 0.15 to 0.27, BCa cluster bootstrap over 40 prompts)'."""
    if not est or not is_num(est.get("estimate")):
        return f"{what} not available"
    d = decimals(est)
    n = est["n_prompts"]
    method = est["method"]
    if method.endswith(" over prompts"):
        how = f"{method[: -len(' prompts')]} {n} prompts"
    else:
        how = f"{method}, {n} prompts"
    if is_num(est.get("ci_low")) and is_num(est.get("ci_high")):
        ci = f"{level(est)} CI {num(est['ci_low'], d)} to {num(est['ci_high'], d)}"
    else:
        ci = "no interval: too few prompts or no variation"
    return f"{what} {num(est['estimate'], d)} ({ci}, {how})"


def position(est: dict[str, Any] | None) -> str:
    """Where the interval lies relative to zero, in plain words."""
    if not est or not (is_num(est.get("ci_low")) and is_num(est.get("ci_high"))):
        return "no interval could be computed"
    if est["ci_low"] > 0:
        return "the interval lies above zero"
    if est["ci_high"] < 0:
        return "the interval lies below zero"
    return "the interval includes zero"


def models_by_label(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["label"]: m for m in report["models"]}


def role_labels(report: dict[str, Any], role: str) -> list[str]:
    return [m["label"] for m in report["models"] if m["role"] == role]


def join(words: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    if not words:
        return "none"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def generation(b: dict[str, Any]) -> str:
    g = b["generation"]
    return (
        f"{plural(g['samples'], 'sample')} per prompt, temperature {g['temperature']:g}, "
        f"top-p {g['top_p']:g}, up to {g['max_new_tokens']} new tokens"
    )


def candidate_label(report: dict[str, Any]) -> str:
    labels = role_labels(report, "candidate")
    return labels[0] if labels else report["audit"]["candidate"]


def pvalue(test: dict[str, Any] | None) -> str:
    """'p = 0.003 (Holm 0.006)' for tables; 'n/a' when there is no test."""
    if not test or not is_num(test.get("p_value")):
        return "n/a"
    p, h = test["p_value"], test.get("p_value_holm")
    fmt = lambda v: f"{v:.3g}" if v >= 0.001 else "< 0.001"  # noqa: E731
    ps = f"p {'= ' if p >= 0.001 else ''}{fmt(p)}"
    ps += f" (Holm {fmt(h)})" if is_num(h) and h != p else ""
    pm = test.get("p_value_models")
    return ps + (f"; rank among models p = {pm:.3g}" if is_num(pm) else "")


def baseline_side(stats: dict[str, Any]) -> str:
    """'both sides' etc.: which baseline leads, in words (empty for older records)."""
    side = stats.get("baseline_side")
    return {"reference": "reference side", "candidate": "candidate side", "both": "both sides"}.get(side, "")


def combined_phrase(c: dict[str, Any], stats: dict[str, Any]) -> str:
    """'combined rank-scale excess 0.21 (95% CI ...) over self_id 1/3, quirks 1/3, ngram 1/3'."""
    weights = ", ".join(f"{b} {w:.2f}" for b, w in c["weights"].items()) or "no battery"
    what = f"combined {c['scale']}-scale excess"
    return f"{describe(c['excess'], what)}; weights {weights}"


def headline(c: dict[str, Any], candidate: str) -> str:
    """One reference's combined excess in plain words of magnitude, with its interval, the
    prompts it rests on and the controls' own range; never a verdict."""
    ref, e = c["reference"], c.get("excess")
    if not e or not is_num(e.get("estimate")):
        return f"{ref}: the combined excess could not be estimated (too few prompts or no baseline)."
    d = decimals(e)
    ci = (f"{level(e)} CI {num(e['ci_low'], d)} to {num(e['ci_high'], d)}"
          if is_num(e.get("ci_low")) and is_num(e.get("ci_high")) else "no interval")
    head = f"{ref}: combined {c['scale']}-scale excess {num(e['estimate'], d)} ({ci}), on {plural(e['n_prompts'], 'prompt')}"
    if c["scale"] == "rank":
        share = 100 * (e["estimate"] + 0.5)
        words = (f"on an average prompt, the similarity of {candidate} to {ref} exceeded {share:.0f}% of the "
                 f"baseline similarities (50% would be no closer than the controls)")
    else:
        words = f"the similarity of {candidate} to {ref} exceeds the baseline by {num(e['estimate'], d)} on average"
    ctl = [x["excess"]["estimate"] for x in c.get("controls", []) if x.get("excess") and is_num(x["excess"].get("estimate"))]
    own = (f"; the controls' own combined excess against {ref} ranges from {num(min(ctl), d)} to {num(max(ctl), d)}"
           if len(ctl) > 1 else f"; the control's own combined excess against {ref} is {num(ctl[0], d)}" if ctl else "")
    return f"{head}: {words}; {position(e)}{own}."
