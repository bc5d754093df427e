"""Scorers turn responses into features and compare two models' samples per prompt.

A battery names its scorer in ``battery.yaml``; :func:`get_scorer` returns the one shared
instance of it (a scorer compiles its data once and holds no state between calls).

    self_id   makers a response claims in the first person      (scorers/self_id.py)
    quirks    normalised picks, jokes, refusals, formatting       (scorers/quirks.py)
    ngram     mean Jaccard of word 1-, 2- and 3-gram sets         (scorers/ngram.py)
    ngram3    Jaccard of word 3-gram sets alone, for comparison   (scorers/ngram.py)
"""

from __future__ import annotations

from typing import Callable

from ..errors import ScoringError
from .base import Scorer
from .ngram import NgramScorer
from .quirks import QuirksScorer
from .self_id import SelfIdScorer


def _ngram3() -> Scorer:
    s = NgramScorer(ns=(3,))
    s.name = "ngram3"
    return s


#: scorer name -> factory
SCORERS: dict[str, Callable[[], Scorer]] = {
    "self_id": SelfIdScorer,
    "quirks": QuirksScorer,
    "ngram": NgramScorer,
    "ngram3": _ngram3,
}
_INSTANCES: dict[str, Scorer] = {}


def get_scorer(name: str) -> Scorer:
    """The shared scorer called ``name``; ScoringError naming the known ones otherwise."""
    if name not in SCORERS:
        raise ScoringError(f"unknown scorer {name!r}; known scorers: {', '.join(sorted(SCORERS))}")
    if name not in _INSTANCES:
        _INSTANCES[name] = SCORERS[name]()
    return _INSTANCES[name]


__all__ = ["SCORERS", "Scorer", "get_scorer", "NgramScorer", "QuirksScorer", "SelfIdScorer"]
