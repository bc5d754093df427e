"""n-gram overlap of open-ended answers: shared stock phrases survive distillation.

Tokenisers need no downloaded data, so every scorer here works the same offline, on zoo output
and on real chat text:

- words: a response is lowercased and cut into words by a regex (letters and digits, with
  inner apostrophes: "don't" is one word); every Chinese or Japanese character is a word of its
  own (those scripts write no spaces). Markdown symbols and punctuation are dropped, so
  formatting habits are left to the quirks battery.
- characters: the lowercased text with runs of whitespace made one space.
- part-of-speech templates: the Penn Treebank tags of the words, from the Brill-style lexicon
  tagger of Pattern that the ``textblob`` package ships as data (no runtime download).

Scorers (the similarity of two responses is the mean, over the sizes n, of the Jaccard index
of their sets of n-grams; sizes that neither response is long enough to have are left out of
that mean; two empty responses are an unusable pair):

    ngram        word n-grams, n = 1, 2, 3
    ngram3       word 3-grams alone (the naive baseline of published comparisons)
    ngram_word   word n-grams, n = 1..4
    ngram_char   character n-grams, n = 1..4
    ngram_pos    part-of-speech n-grams, n = 4, 5, 6 ("syntactic templates")

Reference-distinctive n-grams (a log-odds ratio with an informative Dirichlet prior) are in
:mod:`provenance.scorers.distinctive`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from .base import Scorer, block_means

WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
#: characters of scripts written without spaces: each is a word of its own
_UNSPACED = re.compile("([\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF])")
_SPACES = re.compile(r"\s+")


def words(text: str) -> list[str]:
    """Lowercased words of ``text``; curly apostrophes become straight ones; every Chinese or
    Japanese character is a word."""
    if not isinstance(text, str):
        return []
    # ' and \u2019 play the same part in WORD, so replacing first changes no match
    return WORD.findall(_UNSPACED.sub(r" \1 ", text.lower().replace("\u2019", "'")))


def jaccard_prompt(per_model: list[list[dict[int, set[str]]]], ns: tuple[int, ...]) -> np.ndarray:
    """:meth:`Scorer.score_prompt` for n-gram sets (prepared: {n: set of n-grams}), with
    sparse products instead of set operations: per size n, the samples' n-grams are indexed
    once into a binary (samples x n-grams) matrix X_n, whose X_n X_n^T holds every
    intersection and its diagonal every set size, so each Jaccard index is
    inter / (|a| + |b| - inter), the same division of the same integers as
    :meth:`NgramScorer.pair`; sizes that neither sample has are left out of a pair's mean."""
    feats = [f for per in per_model for f in per]
    s = len(feats)
    total, usable = np.zeros((s, s)), np.zeros((s, s))
    for n in ns:
        index: dict[str, int] = {}
        put = index.setdefault
        cols: list[int] = []
        indptr = [0]
        for f in feats:
            cols.extend([put(g, len(index)) for g in f.get(n, ())])
            indptr.append(len(cols))
        x = sparse.csr_matrix((np.ones(len(cols)), np.array(cols, dtype=np.int64), np.array(indptr)),
                              shape=(s, len(index)))
        inter = (x @ x.T).toarray()
        card = inter.diagonal().copy()
        union = card[:, None] + card[None, :] - inter
        ok = union > 0
        total += np.where(ok, inter / np.where(ok, union, 1.0), 0.0)
        usable += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        pair = np.where(usable > 0, total / usable, np.nan)
    return block_means(pair, [len(per) for per in per_model])


def joined_ngrams(units: list[str], n: int) -> Iterator[str]:
    """The n-grams of ``units`` in order, each as its units joined by one space
    (``" ".join(units[i:i + n])`` for every i, without slicing a list per gram)."""
    return map(" ".join, zip(*(units[k:] for k in range(n))))


class NgramScorer(Scorer):
    """Mean Jaccard similarity of word n-gram sets, over n in ``ns`` (default 1, 2, 3)."""

    name: ClassVar[str] = "ngram"
    vectorised: ClassVar[bool] = True
    keep_features: ClassVar[bool] = False
    features_use_prompt: ClassVar[bool] = False

    def __init__(self, ns: tuple[int, ...] = (1, 2, 3)):
        if not ns or any(n < 1 for n in ns):
            raise ValueError(f"ngram sizes must be positive integers, got {ns!r}")
        self.ns = tuple(sorted(set(ns)))

    def tokens(self, text: str) -> list[str]:
        """The units n-grams are made of (words here; tags for :class:`PosNgramScorer`)."""
        return words(text)

    def features(self, text: str, prompt: Any = None) -> list[str]:
        """Sorted distinct n-grams of every size in ``ns``, each as words joined by one space
        (words never contain spaces, so a gram's size is its number of spaces plus one)."""
        w = self.tokens(text if isinstance(text, str) else "")
        grams = {g for n in self.ns for g in joined_ngrams(w, n)}
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

    def scoring_features(self, text: str, prompt: Any = None) -> dict[int, set[str]]:
        """:meth:`prepare` of :meth:`features`, built straight from the tokens (no sorting)."""
        w = self.tokens(text if isinstance(text, str) else "")
        return {n: set(joined_ngrams(w, n)) for n in self.ns}

    def grams(self, text: str, n: int) -> set[str]:
        """The n-grams of one size of ``text`` (those of :meth:`features` with n units)."""
        w = self.tokens(text if isinstance(text, str) else "")
        return set(joined_ngrams(w, n))

    def score_prompt(self, per_model: list[list[Any]]) -> np.ndarray:
        return jaccard_prompt([[self.prepare(f) for f in per] for per in per_model], self.ns)

    def describe(self, feature: list[str]) -> str:
        longest = [g for g in feature if g.count(" ") + 1 == max(self.ns)]
        return f"{len(feature)} distinct n-grams" + (f", e.g. \"{longest[0]}\"" if longest else "")



class CharNgramScorer(Scorer):
    """Mean Jaccard similarity of character n-gram sets, over n in ``ns`` (default 1..4)."""

    name: ClassVar[str] = "ngram_char"
    vectorised: ClassVar[bool] = True
    keep_features: ClassVar[bool] = False
    features_use_prompt: ClassVar[bool] = False

    def __init__(self, ns: tuple[int, ...] = (1, 2, 3, 4)):
        if not ns or any(n < 1 for n in ns):
            raise ValueError(f"ngram sizes must be positive integers, got {ns!r}")
        self.ns = tuple(sorted(set(ns)))

    def features(self, text: str, prompt: Any = None) -> list[str]:
        """Sorted distinct character n-grams (a gram's size is its length)."""
        t = _SPACES.sub(" ", text.lower()).strip() if isinstance(text, str) else ""
        return sorted({t[i:i + n] for n in self.ns for i in range(len(t) - n + 1)})

    def prepare(self, feature):
        if isinstance(feature, dict):
            return feature
        by_n: dict[int, set[str]] = {n: set() for n in self.ns}
        for g in feature:
            if len(g) in by_n:
                by_n[len(g)].add(g)
        return by_n

    pair = NgramScorer.pair

    def scoring_features(self, text: str, prompt: Any = None) -> dict[int, set[str]]:
        """:meth:`prepare` of :meth:`features`, built straight from the text (no sorting)."""
        t = _SPACES.sub(" ", text.lower()).strip() if isinstance(text, str) else ""
        return {n: {t[i:i + n] for i in range(len(t) - n + 1)} for n in self.ns}

    def grams(self, text: str, n: int) -> set[str]:
        """The character n-grams of one size of ``text``."""
        t = _SPACES.sub(" ", text.lower()).strip() if isinstance(text, str) else ""
        return {t[i:i + n] for i in range(len(t) - n + 1)}

    def score_prompt(self, per_model: list[list[Any]]) -> np.ndarray:
        return jaccard_prompt([[self.prepare(f) for f in per] for per in per_model], self.ns)

    def describe(self, feature: list[str]) -> str:
        return f"{len(feature)} distinct character n-grams"


_TAGGER = None


def pos_tags(text: str) -> list[str]:
    """Penn Treebank part-of-speech tags of the words of ``text`` (punctuation dropped), from
    the lexicon tagger that ``textblob`` ships as data; no download at run time."""
    global _TAGGER
    if _TAGGER is None:
        try:
            from textblob.en import tag
        except ImportError:  # pragma: no cover - a dependency of the package
            from ..errors import ScoringError

            raise ScoringError("the ngram_pos scorer needs the textblob package; pip install textblob") from None
        _TAGGER = tag
    if not isinstance(text, str) or not text.strip():
        return []
    return [t for _, t in _TAGGER(text, tokenize=True) if t[:1].isalpha()]


class PosNgramScorer(NgramScorer):
    """Syntactic templates: n-grams of part-of-speech tags (default n = 4, 5, 6)."""

    name: ClassVar[str] = "ngram_pos"
    #: tagging is slow, so a battery holds these features rather than tag every text again
    keep_features: ClassVar[bool] = True

    def __init__(self, ns: tuple[int, ...] = (4, 5, 6)):
        super().__init__(ns)

    def tokens(self, text: str) -> list[str]:
        return pos_tags(text)

    def describe(self, feature: list[str]) -> str:
        longest = [g for g in feature if g.count(" ") + 1 == max(self.ns)]
        return f"{len(feature)} distinct tag n-grams" + (f", e.g. \"{longest[0]}\"" if longest else "")
