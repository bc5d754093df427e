"""The vectorised per-prompt scoring (``Scorer.score_prompt`` of each shipped scorer, and the
battery table built from it) gives the same numbers as the generic pair-by-pair loop: on random
features with unusable pairs and missing models, and on the zoo audit's stored answers."""

from __future__ import annotations

import numpy as np
import pytest

from provenance.analysis import load_battery_data
from provenance.scorers import Scorer, get_scorer
from provenance.scorers.quirks import norm_style
from provenance.stats.excess import ScoreTable
from provenance.store import Store

VECTORISED = ["ngram", "ngram3", "ngram_word", "ngram_char", "quirks", "self_id"]
WORDS = "the a cat dog sat on mat ran far blue red I am here there it is was".split()


def same(a, b):
    return a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-12, equal_nan=True) \
        and np.array_equal(np.isnan(a), np.isnan(b))


def random_prompt(name: str, g: np.random.Generator, models: int = 6) -> list[list]:
    """Features of ``models`` models on one prompt: 0 to 5 samples each (0: no answer)."""
    scorer = get_scorer(name)

    def text():
        return " ".join(g.choice(WORDS, size=int(g.integers(0, 12))))

    def feature():
        if name.startswith("ngram"):
            return scorer.features(text())
        if name == "self_id":
            return sorted(set(g.choice(["openai", "anthropic", "google", "meta"], size=int(g.integers(0, 3)))))
        return None if g.random() < 0.2 else str(g.choice(["7", "3", "blue", "teal"]))

    return [[feature() for _ in range(int(g.integers(0, 6)))] for _ in range(models)]


@pytest.mark.parametrize("name", VECTORISED)
def test_score_prompt_equals_pair_loop_on_random_features(name):
    scorer = get_scorer(name)
    assert scorer.vectorised
    g = np.random.default_rng(7)
    for _ in range(60):
        per_model = random_prompt(name, g)
        fast, loop = scorer.score_prompt(per_model), Scorer.score_prompt(scorer, per_model)
        assert same(fast, loop), (per_model, fast, loop)
        # and the loop is the plain similarity of each pair
        for a in range(len(per_model)):
            for b in range(len(per_model)):
                ref = scorer.self_similarity(per_model[a]) if a == b else scorer.similarity(per_model[a],
                                                                                          per_model[b])
                assert same(np.array(fast[a, b]), np.array(ref))


def test_quirks_style_vectors_and_prepared_ngram_features():
    quirks, ngram = get_scorer("quirks"), get_scorer("ngram")
    g = np.random.default_rng(3)
    for _ in range(30):
        per_model = [[norm_style(" ".join(g.choice(WORDS + ["\n\n- item", "**bold**", "delve"], size=20)), {})
                      if g.random() > 0.1 else None for _ in range(int(g.integers(0, 5)))] for _ in range(4)]
        assert same(quirks.score_prompt(per_model), Scorer.score_prompt(quirks, per_model))
        prepared = [[quirks.prepare(f) for f in per] for per in per_model]
        assert same(quirks.score_prompt(prepared), Scorer.score_prompt(quirks, per_model))
        texts = [[ngram.features(" ".join(g.choice(WORDS, size=8))) for _ in range(3)] for _ in range(3)]
        prepared = [[ngram.prepare(f) for f in per] for per in texts]
        assert same(ngram.score_prompt(prepared), Scorer.score_prompt(ngram, texts))
    # style answers beside named answers fall back to the pair loop
    mixed = [["style:1,0,0.5"], ["blue", "style:1,1,0.5"]]
    assert same(quirks.score_prompt(mixed), Scorer.score_prompt(quirks, mixed))


def test_battery_tables_equal_pair_by_pair_on_zoo_audit(zoo_audit):
    from provenance.audit import build_models
    from provenance.battery import resolve_batteries

    spec, out, _ = zoo_audit
    models, _, _ = build_models(spec)
    with Store(spec.store or out / "store.sqlite") as store:
        datas = [load_battery_data(b, models, store, samples=spec.samples)
                 for b in resolve_batteries(spec.batteries, models)]
    assert {get_scorer(d.battery.scorer).name for d in datas} == {"self_id", "quirks", "ngram"}
    for d in datas:
        fast = d.table()
        pair, self_pair = d._pair_by_pair(get_scorer(d.battery.scorer))  # noqa: SLF001 - the old path
        loop = ScoreTable(d.battery.name, d.prompt_keys(), pair=pair, self_pair=self_pair)
        labels = list(d.features)
        for i, a in enumerate(labels):
            assert same(fast.ceiling(a), loop.ceiling(a))
            for b in labels[i + 1:]:
                assert same(fast.s(a, b), loop.s(a, b)), (d.battery.name, a, b)
                assert same(fast.s(b, a), fast.s(a, b))


@pytest.mark.parametrize("name", ["ngram", "ngram3", "ngram_word", "ngram_char"])
def test_recomputed_ngram_features_match_stored_form(name):
    """A battery that recomputes n-gram features (not held) builds them straight from the
    text: the same sets as the stored feature, prepared, and its longest grams."""
    from provenance.report.details import _grams

    scorer = get_scorer(name)
    assert not scorer.keep_features
    g = np.random.default_rng(11)
    for _ in range(50):
        text = " ".join(g.choice(WORDS + ["Don\u2019t", "\u4e2d\u6587", "  x\n"], size=int(g.integers(0, 15))))
        feature = scorer.features(text)
        assert scorer.scoring_features(text) == scorer.prepare(feature)
        for n in scorer.ns:
            assert scorer.grams(text, n) == (_grams(feature, n) if name != "ngram_char"
                                             else {x for x in feature if len(x) == n})
