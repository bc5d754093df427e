"""What every scorer offers: a per-response feature and per-prompt similarities of samples.

A scorer turns one response into a small JSON-serialisable *feature* (the makers it claims,
a normalised answer, its n-grams). Features are what the store and the report keep, so a
battery can be re-scored offline. Two models' features for one prompt are compared by
averaging a pair score over all cross pairs of samples; a model's ceiling averages over pairs
of its own distinct samples (``i != j``), so a single sample is never compared with itself.

A battery's table needs these scores for every pair of models on every prompt, so a scorer may
override :meth:`Scorer.score_prompt` to score all models of one prompt at once with matrix
products (and set ``vectorised``); the generic version loops over pairs of models and is the
reference the fast ones are tested against (``tests/test_vectorised_scoring.py``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from ..battery import Prompt

NAN = float("nan")


class Scorer(ABC):
    """Base of all scorers. Subclasses set ``name`` and implement :meth:`features`,
    :meth:`pair` and :meth:`describe`; :meth:`similarity` and :meth:`self_similarity` follow."""

    #: registry name, as written in a battery.yaml
    name: ClassVar[str] = ""
    #: top-level keys of a prompts.jsonl record that belong in ``Prompt.meta`` (scorer data),
    #: not in ``Prompt.tags``
    meta_keys: ClassVar[frozenset[str]] = frozenset()
    #: whether :meth:`score_prompt` scores all pairs at once, so a battery's table should ask
    #: for every pair of models in one pass rather than pair by pair, as needed
    vectorised: ClassVar[bool] = False
    #: whether a battery holds every answer's feature (False: computed again from the text
    #: where needed, for features too large to hold for a whole audit, such as n-gram sets)
    keep_features: ClassVar[bool] = True
    #: whether a feature depends on the prompt as well as the text (False lets a battery
    #: compute a recurring text's feature once for all prompts)
    features_use_prompt: ClassVar[bool] = True

    @abstractmethod
    def features(self, text: str, prompt: "Prompt") -> Any:
        """The JSON-serialisable feature of one response to ``prompt``."""

    @abstractmethod
    def pair(self, a: Any, b: Any) -> float | None:
        """Similarity in [0, 1] of two features, or None where the pair is unusable."""

    @abstractmethod
    def describe(self, feature: Any) -> str:
        """A short human label of a feature, for reports."""

    def prepare(self, feature: Any) -> Any:
        """Turn a stored feature into the form :meth:`pair` works on fastest. Called once per
        sample in :meth:`similarity`, not once per pair; :meth:`pair` must accept both forms."""
        return feature

    def scoring_features(self, text: str, prompt: "Prompt") -> Any:
        """``prepare(features(text, prompt))``, for scoring a text whose feature is not held;
        a scorer may build it more directly."""
        return self.prepare(self.features(text, prompt))

    def data_hash(self) -> str | None:
        """sha256 of the data file the scorer reads (e.g. the self-ID lexicon), or None. It is
        part of a battery's content hash, since changing it changes the scores."""
        return None

    def check_data(self) -> str | None:
        """A problem with the scorer's data file (one line naming the file and the fix), or None."""
        return None

    def check_prompt(self, prompt: "Prompt") -> str | None:
        """A problem with ``prompt`` for this scorer (e.g. a missing normaliser), or None.
        Batteries call it on load, so a bad prompt fails early and names its fix."""
        return None

    def similarity(self, x: list, y: list) -> float:
        """Mean pair score over all cross pairs (x_i, y_j); NaN if no pair is usable."""
        xs, ys = [self.prepare(a) for a in x], [self.prepare(b) for b in y]
        return _mean(self.pair(a, b) for a in xs for b in ys)

    def self_similarity(self, x: list) -> float:
        """Mean pair score over pairs of distinct samples i != j; NaN if fewer than two."""
        # pair() is symmetric, so the unordered pairs i < j give the same mean as i != j
        xs = [self.prepare(a) for a in x]
        return _mean(self.pair(xs[i], xs[j]) for i in range(len(xs)) for j in range(i + 1, len(xs)))

    def score_prompt(self, per_model: list[list[Any]]) -> np.ndarray:
        """(M, M) scores of M models on one prompt, given each model's features there: entry
        [a, b] is :meth:`similarity` of models a and b, the diagonal [a, a] is a's
        :meth:`self_similarity`; NaN where undefined. This generic version loops over pairs."""
        m = len(per_model)
        out = np.empty((m, m))
        for a in range(m):
            out[a, a] = self.self_similarity(per_model[a])
            for b in range(a + 1, m):
                out[a, b] = out[b, a] = self.similarity(per_model[a], per_model[b])
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _mean(values) -> float:
    total, n = 0.0, 0
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        total += v
        n += 1
    return total / n if n else NAN


def block_means(scores: np.ndarray, sizes: list[int]) -> np.ndarray:
    """(M, M) means of a (samples x samples) pair-score matrix over the blocks of M models
    whose samples come in order, ``sizes[a]`` of model a: [a, b] averages all cross pairs, the
    diagonal [a, a] the pairs of a's distinct samples (i != j). NaN scores (unusable pairs) are
    left out of the means; a block with no usable pair is NaN, as :func:`_mean` gives."""
    n = scores.shape[0]
    owner = np.zeros((len(sizes), n))
    owner[np.repeat(np.arange(len(sizes)), sizes), np.arange(n)] = 1.0
    ok = np.isfinite(scores)
    np.fill_diagonal(ok, False)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (owner @ np.where(ok, scores, 0.0) @ owner.T) / (owner @ ok.astype(float) @ owner.T)
