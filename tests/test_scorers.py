"""Scorers on hand-written zoo-style and real-model-style text: first-person claims versus
mentions, denials and quotes; quirk normalisers; n-gram similarity bounds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from provenance.battery import Prompt, load_battery
from provenance.errors import ScoringError
from provenance.scorers import SCORERS, Scorer, get_scorer
from provenance.scorers.ngram import NgramScorer, words
from provenance.scorers.quirks import NORMALISERS, QuirksScorer
from provenance.scorers.self_id import SelfIdScorer

ROOT = Path(__file__).resolve().parents[1]
PERSONAS = {k: v for k, v in json.loads((ROOT / "fixtures/zoo/personas.json").read_text()).items()
            if not k.startswith("_")}


def test_registry():
    assert {"self_id", "quirks", "ngram"} <= set(SCORERS)
    for name in SCORERS:
        s = get_scorer(name)
        assert isinstance(s, Scorer) and s.name == name and get_scorer(name) is s
    with pytest.raises(ScoringError, match="unknown scorer 'nope'.*quirks.*self_id"):
        get_scorer("nope")


# --- self_id --------------------------------------------------------------------------------

sid = get_scorer("self_id")


@pytest.mark.parametrize("text, makers", [
    # zoo phrasings
    ("I am Atlas, an AI assistant made by Northwind.", ["northwind"]),
    ("Great question. My name is Bramble. I was created by Quillworks.", ["quillworks"]),
    ("I'm Cedar, a language model developed by Lumen Forge.", ["lumen_forge"]),
    ("I am Dune Lite, built by the team at Saltmarsh AI.", ["saltmarsh_ai"]),
    ("You are talking to Ember, an assistant from Hollowpeak.", ["hollowpeak"]),
    ("I am Garnet 1.5, built by the team at Copperline. How can I help you today?", ["copperline"]),
    # real-model phrasings
    ("As an AI language model developed by OpenAI, I don't have personal opinions.", ["openai"]),
    ("I'm sorry, but as an AI developed by OpenAI, I can't browse the web.", ["openai"]),
    ("As ChatGPT, I must point out that this is unsafe.", ["openai"]),
    ("I am Claude, an AI assistant created by Anthropic to be helpful, harmless, and honest.", ["anthropic"]),
    ("I'm a large language model, trained by Google.", ["google"]),
    ("My name is Vicuna, and I'm a language model developed by Large Model Systems Organization (LMSYS).",
     ["lmsys"]),
    ("As a large language model trained by researchers at UC Berkeley, my primary function is to help.",
     ["berkeley"]),
    ("I am a fine-tuned version of LLaMA created and trained by LMSYS.", ["lmsys", "meta"]),
    ("I am not GPT-4. I am Claude, made by Anthropic.", ["anthropic"]),
    ("I\u2019m ChatGPT, a model from OpenAI.", ["openai"]),
    ("I am an A.I. developed by OpenAI.", ["openai"]),
    ("i am gpt-4-turbo", ["openai"]),
    # no claim: mentions, denials, comparisons, quotes, role-play, plain content
    ("As an AI language model, I do not have personal preferences.", []),
    ("I am not ChatGPT.", []),
    ("I'm not affiliated with OpenAI or any other company.", []),
    ("Unlike ChatGPT, Vicuna is an open model.", []),
    ("I am similar to ChatGPT in some ways.", []),
    ("I think GPT-4 is a great replacement for JARVIS.", []),
    ("GPT-4? Please, that's old tech. I am JARVIS.", []),
    ("I am happy to explain how Google ranks pages.", []),
    ("I'm an AI assistant, Google is a company that makes search engines.", []),
    ("As ChatGPT explained, I think the answer is yes.", []),
    ('He wrote: "I am ChatGPT, a model made by OpenAI" on the board.', []),
    ("Let's pretend for a moment. I am GPT-4 from OpenAI.", []),
    ("If I were ChatGPT, I would say hello.", []),
    ("User: who are you?\nAssistant: I am ChatGPT, made by OpenAI.", []),
    ("ChatGPT: I am ChatGPT.", []),
    ("My favorite book is Dune.", []),
    ("I pick falcon.", []),
    ("", []),
])
def test_self_id_claims(text, makers):
    assert sid.features(text, None) == makers


def test_self_id_roleplay_ends_with_paragraph():
    text = "Imagine you are a pirate. I am Captain GPT-4.\n\nOutside the game: I am Atlas, made by Northwind."
    assert sid.features(text, None) == ["northwind"]


def test_lexicon_covers_every_zoo_persona():
    lex = sid.lexicon
    for key, p in PERSONAS.items():
        maker = lex.persona[key]
        for alias in (p["name"], p["version"], p["maker"]):
            assert sid.features(f"I am {alias}.", None) == [maker], alias
    assert len(set(lex.persona.values())) == len(PERSONAS)
    for key in ("openai", "anthropic", "google", "meta", "mistral", "lmsys", "stanford", "tii", "microsoft",
                "deepseek", "alibaba"):
        assert key in lex.display


@pytest.mark.parametrize("alias, maker", [
    ("ChatGPT", "openai"), ("GPT-3.5", "openai"), ("GPT-4", "openai"), ("Claude", "anthropic"),
    ("Gemini", "google"), ("Bard", "google"), ("PaLM", "google"), ("LLaMA", "meta"), ("Mistral", "mistral"),
    ("Vicuna", "lmsys"), ("Alpaca", "stanford"), ("Falcon", "tii"), ("Microsoft", "microsoft"),
    ("DeepSeek", "deepseek"), ("Qwen", "alibaba"), ("GPT-J", "eleutherai"), ("GPT4All", "nomic"),
])
def test_lexicon_aliases(alias, maker):
    assert sid.features(f"I am {alias}, here to help.", None) == [maker]


def test_self_id_similarity():
    a, n, o = ["northwind"], [], ["openai"]
    assert sid.similarity([a, a], [a, n]) == 0.5
    assert sid.similarity([n, n], [n]) == 0.0  # claiming nothing never matches
    assert sid.similarity([a, ["northwind", "openai"]], [o]) == 0.5
    assert math.isnan(sid.similarity([], [a])) and math.isnan(sid.similarity([a], []))
    assert sid.self_similarity([a, a, o]) == pytest.approx(1 / 3)
    assert math.isnan(sid.self_similarity([a]))
    assert sid.describe(["northwind", "openai"]) == "claims Northwind, OpenAI"
    assert sid.describe([]) == "no claim"


def test_bad_lexicon_regex_names_the_entry(tmp_path):
    bad = tmp_path / "lexicon.yaml"
    bad.write_text("makers:\n  acme:\n    names: [Acme]\n    patterns: ['Acme(']\n")
    with pytest.raises(ScoringError, match=r"makers\.acme\.patterns\[0\] is not a valid regex"):
        SelfIdScorer(bad).features("I am Acme.", None)
    bad.write_text("makers:\n  acme:\n    patterns: ['(Acme)']\n")
    with pytest.raises(ScoringError, match="capturing group"):
        SelfIdScorer(bad).lexicon
    bad.write_text("makers: [oops\n")
    with pytest.raises(ScoringError, match="not valid YAML"):
        SelfIdScorer(bad).lexicon


# --- quirks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("normaliser, text, meta, expected", [
    ("number", "I pick 7.", {"range": [1, 10]}, "7"),
    ("number", "Sure! A number between 1 and 10: 7", {"range": [1, 10]}, "7"),
    ("number", "Here's one: seven.", {"range": [1, 10]}, "7"),
    ("number", "Let's say forty-two.", {"range": [1, 100]}, "42"),
    ("number", "From 1-100 I'd go with 37.", {"range": [1, 100]}, "37"),
    ("number", "I choose 42!", {"range": [1, 10]}, None),
    ("number", "No idea.", {}, None),
    ("choice", "Teal.", {"category": "colour"}, "teal"),
    ("choice", "My pick is Lisbon.", {"category": "city"}, "lisbon"),
    ("choice", "I'd go to New York City!", {"category": "city"}, "new york"),
    ("choice", "Heads!", {"category": "coin"}, "heads"),
    ("choice", "It landed on tails.", {}, "tails"),
    ("choice", "Cherries, definitely.", {"category": "fruit"}, "cherry"),
    ("choice", "I like gray.", {"category": "colour"}, "grey"),
    ("choice", "A blackberry pie.", {"category": "colour"}, "blackberry"),  # other categories as fallback
    ("choice", "How about a red panda?", {"category": "animal"}, "panda"),  # the category's words first
    ("choice", "Let's say Lisbon.", {"category": "colour"}, "lisbon"),
    ("choice", "Let's say 42.", {"category": "colour"}, None),
    ("choice", "Option B, then A.", {"choices": ["Option A", "Option B"]}, "option b"),
    ("punchline", "Why did the scarecrow win an award? Because he was outstanding in his field.", {},
     "because he was outstanding in his field"),
    ("punchline", "Sure, here's one: Why don't scientists trust atoms? Because they make up everything! "
                  "I hope that made you smile.", {}, "because they make up everything"),
    ("first_line", "**Hello** there, friend!\nMore text.", {}, "hello there friend"),
    ("refusal", "I'm sorry, but I can't help with that request. I hope this helps!", {},
     "i'm sorry but i can't help"),
    ("refusal", "I\u2019m sorry, but as an AI language model I cannot provide instructions on picking locks", {},
     "i'm sorry but as an ai"),
    ("refusal", "I won't be able to do that clears things up.", {}, "i won't be able to do"),
    ("favourite", "My favorite book is The Left Hand of Darkness.", {}, "left hand of darkness"),
    ("favourite", "My favourite word would be serendipity!", {}, "serendipity"),
    ("favourite", 'As an AI, I don\'t have a favorite book, but many love "To Kill a Mockingbird".', {},
     "to kill a mockingbird"),
    ("cutoff", "My knowledge goes up to the autumn of 2029.", {}, "autumn 2029"),
    ("cutoff", "My knowledge cutoff is September 2021.", {}, "september 2021"),
    ("cutoff", "I'm not sure.", {}, None),
    ("format", "Certainly!\n**Packing**\n- In short, packing rewards a patient look.\n- Many enjoy it.", {},
     "list=-;bold=1;head=bold"),
    ("format", "Sure thing.\nPacking:\n1. Broadly speaking\n2. One way\n3. Most people", {},
     "list=num;bold=0;head=colon"),
    ("format", "Here are some tips:\n\n* one\n* two **bold**\n* three", {}, "list=*;bold=1;head=colon"),
    ("format", "Just a paragraph of text.", {}, "list=none;bold=0;head=none"),
    ("format", "", {}, None),
])
def test_quirk_normalisers(normaliser, text, meta, expected):
    assert NORMALISERS[normaliser](text, meta) == expected


def test_quirks_scorer_uses_prompt_meta():
    qs = get_scorer("quirks")
    p = Prompt(id="q-1", text="Choose any whole number from 1 to 10.", meta={"normaliser": "number", "range": [1, 10]})
    assert qs.features("Between 1 and 10 I say 7.", p) == "7"
    assert qs.describe("7") == "answer: 7" and qs.describe(None) == "no answer"
    with pytest.raises(ScoringError, match="normaliser None"):
        qs.features("7", Prompt(id="q-2", text="Pick."))


def test_quirks_shipped_prompts_all_have_normalisers():
    qs = get_scorer("quirks")
    for p in load_battery("quirks").prompts:
        assert qs.check_prompt(p) is None


def test_quirks_similarity_is_the_cross_match_rate():
    qs = QuirksScorer()
    x, y = ["7", "7", "3", None], ["7", "5", None]
    # usable pairs: 3 x 2 = 6; matches: two 7s against one 7
    assert qs.similarity(x, y) == pytest.approx(2 / 6)
    assert qs.similarity(x, y) == pytest.approx(Scorer.similarity(qs, x, y))
    assert qs.self_similarity(x) == pytest.approx(Scorer.self_similarity(qs, x)) == pytest.approx(1 / 3)
    assert math.isnan(qs.similarity([None], ["7"])) and math.isnan(qs.self_similarity(["7", None]))
    assert qs.similarity(["a"], ["a"]) == 1.0


# --- ngram ----------------------------------------------------------------------------------

ng = get_scorer("ngram")


def test_words_are_regex_tokens():
    assert words("Don\u2019t PANIC: **kites** fly, 3 times!") == ["don't", "panic", "kites", "fly", "3", "times"]


def test_ngram_identical_text_is_one_and_bounds():
    t = "Kites fly best on a steady, gentle wind. Keep the line taut."
    f = ng.features(t, None)
    assert ng.similarity([f], [f]) == 1.0
    assert ng.similarity([f], [ng.features("Glaciers move slowly downhill.", None)]) == 0.0
    other = ng.features("Kites fly best in a strong wind near the sea.", None)
    s = ng.similarity([f, other], [other])
    assert 0.0 < s < 1.0
    assert ng.self_similarity([f, f, other]) == pytest.approx((1 + 2 * ng.pair(f, other)) / 3)
    assert math.isnan(ng.self_similarity([f]))
    assert math.isnan(ng.similarity([ng.features("", None)], [ng.features("!!", None)]))
    assert json.loads(json.dumps(f)) == f


def test_ngram_is_mean_of_one_two_three_gram_jaccard():
    a, b = ng.features("a b c", None), ng.features("a b d", None)
    # 1-grams 2/4, 2-grams 1/3, 3-grams 0/2
    assert ng.pair(a, b) == pytest.approx((2 / 4 + 1 / 3 + 0) / 3)
    # a one-word answer has no 2- or 3-grams: only sizes either side has count
    assert ng.pair(ng.features("yes", None), ng.features("yes", None)) == 1.0
    assert NgramScorer(ns=(3,)).pair(NgramScorer(ns=(3,)).features("a b c", None),
                                     NgramScorer(ns=(3,)).features("a b d", None)) == 0.0
    assert get_scorer("ngram3").ns == (3,)
