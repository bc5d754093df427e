"""Word n-gram overlap of open-ended answers: shared stock phrases survive distillation.

A response is lowercased and cut into words by a regex (letters and digits, with inner
apostrophes: "don't" is one word); no downloaded tokenizer data is needed, so the scorer works
the same offline, on zoo output and on real chat text. Markdown symbols and punctuation are
dropped, so formatting habits are left to the quirks battery.

Default: the similarity of two responses is the mean, over n = 1, 2, 3, of the Jaccard index
of their sets of word n-grams. Sizes that neither response is long enough to have are left
out of that mean; two empty responses are an unusable pair.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from .base import Scorer

WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


def words(text: str) -> list[str]:
    """Lowercased words of ``text``; curly apostrophes become straight ones."""
    return [w.replace("\u2019", "'") for w in WORD.findall(text.lower())]


class NgramScorer(Scorer):
    """Mean Jaccard similarity of word n-gram sets, over n in ``ns`` (default 1, 2, 3)."""

    name: ClassVar[str] = "ngram"

    def __init__(self, ns: tuple[int, ...] = (1, 2, 3)):
        if not ns or any(n < 1 for n in ns):
            raise ValueError(f"ngram sizes must be positive integers, got {ns!r}")
        self.ns = tuple(sorted(set(ns)))

    def features(self, text: str, prompt: Any = None) -> list[str]:
        """Sorted distinct n-grams of every size in ``ns``, each as words joined by one space
        (words never contain spaces, so a gram's size is its number of spaces plus one)."""
        w = words(text or "")
        grams = {" ".join(w[i:i + n]) for n in self.ns for i in range(len(w) - n + 1)}
        return sorted(grams)

    def prepare(self, feature: list[str] | dict[int, set[str]]) -> dict[int, set[str]]:
        """{n: set of n-grams}; a feature already in that form is returned as it is."""
        if isinstance(feature, dict):
            return feature
        by_n: dict[int, set[str]] = {n: set() for n in self.ns}
        for g in feature:
            n = g.count(" ") + 1
            if n in by_n:
                by_n[n].add(g)
        return by_n

    def pair(self, a, b) -> float | None:
        a, b = self.prepare(a), self.prepare(b)
        scores = []
        for n in self.ns:
            sa, sb = a[n], b[n]
            union = len(sa | sb)
            if union:
                scores.append(len(sa & sb) / union)
        return sum(scores) / len(scores) if scores else None

    def describe(self, feature: list[str]) -> str:
        longest = [g for g in feature if g.count(" ") + 1 == max(self.ns)]
        return f"{len(feature)} distinct n-grams" + (f", e.g. \"{longest[0]}\"" if longest else "")

