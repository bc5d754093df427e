"""Scorers turn responses into features and compare two models' samples per prompt.

A battery names its scorer in ``battery.yaml``; :func:`get_scorer` returns the one shared
instance of it (a scorer compiles its data once and holds no state between calls).

    self_id   makers a response claims in the first person      (scorers/self_id.py)
    quirks    normalised picks, jokes, refusals, formatting       (scorers/quirks.py)
    ngram       mean Jaccard of word 1-, 2- and 3-gram sets       (scorers/ngram.py)
    ngram3      Jaccard of word 3-gram sets alone, for comparison (scorers/ngram.py)
    ngram_word  mean Jaccard of word 1- to 4-gram sets            (scorers/ngram.py)
    ngram_char  mean Jaccard of character 1- to 4-gram sets       (scorers/ngram.py)
    ngram_pos   mean Jaccard of part-of-speech 4- to 6-gram sets  (scorers/ngram.py)
    likelihood  white-box: how likely local models find each other's answers (scorers/likelihood.py)

Battery-specific statistics (claim rates, distinctive n-grams, white-box checks) are in
``scorers/battery_stats.py``.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ScoringError
from .base import Scorer
from .likelihood import LikelihoodScorer
from .ngram import CharNgramScorer, NgramScorer, PosNgramScorer
from .quirks import QuirksScorer
from .self_id import SelfIdScorer


def _ngram3() -> Scorer:
    s = NgramScorer(ns=(3,))
    s.name = "ngram3"
    return s


def _ngram_word() -> Scorer:
    s = NgramScorer(ns=(1, 2, 3, 4))
    s.name = "ngram_word"
    return s


#: scorer name -> factory
SCORERS: dict[str, Callable[[], Scorer]] = {
    "self_id": SelfIdScorer,
    "quirks": QuirksScorer,
    "ngram": NgramScorer,
    "ngram3": _ngram3,
    "ngram_word": _ngram_word,
    "ngram_char": CharNgramScorer,
    "ngram_pos": PosNgramScorer,
    "likelihood": LikelihoodScorer,
}
_INSTANCES: dict[str, Scorer] = {}


def get_scorer(name: str) -> Scorer:
    """The shared scorer called ``name``; ScoringError naming the known ones otherwise."""
    if name not in SCORERS:
        raise ScoringError(f"unknown scorer {name!r}; known scorers: {', '.join(sorted(SCORERS))}")
    if name not in _INSTANCES:
        _INSTANCES[name] = SCORERS[name]()
    return _INSTANCES[name]


__all__ = ["SCORERS", "Scorer", "get_scorer", "CharNgramScorer", "LikelihoodScorer", "NgramScorer", "PosNgramScorer",
           "QuirksScorer", "SelfIdScorer"]
