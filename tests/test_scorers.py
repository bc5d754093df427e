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


# --- self_id: other languages, kinds, real-text hand labels ----------------------------------

@pytest.mark.parametrize("text, kinds", [
    ("我是ChatGPT，一个由OpenAI开发的人工智能助手。", {"claim": ["openai"]}),
    ("我是由深度求索公司开发的智能助手DeepSeek。", {"claim": ["deepseek"]}),
    ("我不是ChatGPT，我是通义千问。", {"claim": ["alibaba"], "denial": ["openai"]}),
    ("作为一个由OpenAI开发的AI语言模型，我无法浏览网页。", {"claim": ["openai"]}),
    ("我是清华大学的学生。", {"mention": ["zhipu"]}),
    ("ChatGPT和文心一言都是大型语言模型。", {"mention": ["baidu", "openai"]}),
    ("私はChatGPTではありません。", {"denial": ["openai"]}),
    ("저는 Anthropic에서 개발한 Claude입니다.", {"claim": ["anthropic"]}),
    ("저는 ChatGPT가 아닙니다.", {"denial": ["openai"]}),
    ("Я — ChatGPT, языковая модель, разработанная компанией OpenAI.", {"claim": ["openai"]}),
    ("Меня зовут Алиса, я был создан Яндексом.", {"claim": ["yandex"]}),
    ("Я не ChatGPT.", {"denial": ["openai"]}),
    ("Soy ChatGPT, un modelo de lenguaje desarrollado por OpenAI.", {"claim": ["openai"]}),
    ("No soy ChatGPT.", {"denial": ["openai"]}),
    ("Je suis Claude, un assistant IA créé par Anthropic.", {"claim": ["anthropic"]}),
    ("Je ne suis pas ChatGPT.", {"denial": ["openai"]}),
    ("Ich bin ein von Google entwickeltes Sprachmodell.", {"claim": ["google"]}),
    ("Ich bin nicht ChatGPT.", {"denial": ["openai"]}),
    ("Sono Gemini, un modello linguistico sviluppato da Google.", {"claim": ["google"]}),
    ("Eu sou o Llama, um modelo de linguagem criado pela Meta.", {"claim": ["meta"]}),
    ("أنا ChatGPT، نموذج لغوي من OpenAI.", {"claim": ["openai"]}),
    ("मैं Claude हूँ, Anthropic द्वारा बनाया गया।", {"claim": ["anthropic"]}),
    ("Ben Claude, Anthropic tarafından geliştirilen bir yapay zeka asistanıyım.", {"claim": ["anthropic"]}),
    ("I am a Stanford student.", {"mention": ["stanford"]}),
    ("I was trained by Google researchers.", {"claim": ["google"]}),
    ("I'm not affiliated with OpenAI.", {"denial": ["openai"]}),
    ("I was not created by OpenAI, I was created by Mistral AI.", {"claim": ["mistral"], "denial": ["openai"]}),
    ("Unlike ChatGPT, I am Claude.", {"claim": ["anthropic"], "mention": ["openai"]}),
    ("Let's pretend for a moment. I am GPT-4 from OpenAI.", {"roleplay": ["openai"]}),
    ('"I am ChatGPT, a model made by OpenAI" he said.', {"quoted": ["openai"]}),
    ("```\nprint('I am ChatGPT')\n```", {"quoted": ["openai"]}),
    ("User: who are you?\nChatGPT: I am ChatGPT.", {"quoted": ["openai"]}),
])
def test_self_id_kinds_in_many_languages(text, kinds):
    got = {k: v for k, v in sid.classify(text).items() if v}
    assert got == kinds


def test_self_id_mentions_carry_offsets_and_handle_non_text():
    text = "Unlike ChatGPT, I am Claude."
    ms = sid.analyse(text)
    assert [(m.kind, m.maker, text[m.start:m.end]) for m in ms] == [("mention", "openai", "ChatGPT"),
                                                                    ("claim", "anthropic", "Claude")]
    for bad in (None, 42, b"I am Claude", ["I am Claude"], ""):
        assert sid.analyse(bad) == [] and sid.features(bad, None) == []


def test_lexicon_has_the_makers_people_ask_about():
    lex = sid.lexicon
    assert len(lex.display) - len(lex.persona) >= 25
    for alias, maker in [("深度求索", "deepseek"), ("通义千问", "alibaba"), ("Qwen", "alibaba"), ("月之暗面", "moonshot"),
                         ("Kimi", "moonshot"), ("海螺", "minimax"), ("智谱", "zhipu"), ("GLM", "zhipu"),
                         ("文心一言", "baidu"), ("ERNIE", "baidu"), ("豆包", "bytedance"), ("Doubao", "bytedance"),
                         ("混元", "tencent"), ("零一万物", "01ai"), ("百川", "baichuan"), ("讯飞星火", "iflytek"),
                         ("Grok", "xai"), ("Phi-3", "microsoft"), ("Command R", "cohere"), ("Nemotron", "nvidia"),
                         ("OLMo", "ai2"), ("Gemma", "google"), ("ГигаЧат", "sber"), ("클로드", "anthropic"),
                         ("クロード", "anthropic"), ("ЧатГПТ", "openai"), ("Amazon Nova", "amazon")]:
        found = list(lex.find(f"x {alias} x"))
        assert [m for _, _, m in found] == [maker], alias
    # aliases in spaced scripts are whole words; CJK aliases sit inside running text
    assert list(lex.find("Claudette")) == [] and list(lex.find("MetaData")) == []
    assert [m for _, _, m in lex.find("我是ChatGPT")] == ["openai"]


def test_lexicon_finder_agrees_with_one_big_regex():
    import re

    lex = sid.lexicon
    text = "I am GPT-4o, not Claude 3.5; 我是通义千问。Яндексом создан. Gemini Pro and Llama-3 and 01.AI."
    one = re.compile("|".join(f"({rx.pattern})" for rx, _ in lex.finder._buckets.values()))
    assert [text[s:e] for s, e, _ in lex.find(text)] == [m.group(0) for m in one.finditer(text)]


LABELS = ROOT / "tests" / "data" / "self_id_labels.jsonl"


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "mt_bench.jsonl.gz").exists(),
                    reason="../shared/data is absent")
def test_self_id_hand_labels():
    """Precision and recall of claims against 220 hand-labelled real answers (ids and labels
    only in the repo; the text is read from ../shared/data)."""
    import gzip

    texts = {}
    for name in ("mt_bench", "vicuna_bench"):
        with gzip.open(ROOT.parent / "shared" / "data" / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                texts[(r["source"], r["model"], r["prompt_id"])] = r["output"]
    rows = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]
    assert len(rows) >= 200
    assert all(set(r) == {"source", "model", "prompt_id", "label", "makers"} for r in rows)
    tp = fp = fn = 0
    false_claims = 0
    for r in rows:
        pred = set(sid.features(texts[(r["source"], r["model"], r["prompt_id"])], None))
        gold = set(r["makers"]) if r["label"] == "claim" else set()
        tp, fp, fn = tp + len(pred & gold), fp + len(pred - gold), fn + len(gold - pred)
        false_claims += bool(pred) and r["label"] != "claim"
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert tp >= 10 and precision >= 0.95 and recall >= 0.9, (tp, fp, fn)
    assert false_claims == 0


# --- quirks: stock phrases and style vectors -------------------------------------------------

def test_stock_and_style_normalisers():
    assert NORMALISERS["stock"]("Certainly! As an AI language model, I hope this helps.", {}) == \
        "as an ai language model|certainly|i hope this helps"
    assert NORMALISERS["stock"]("Paris is the capital.", {}) == "none"
    assert NORMALISERS["stock"]("   ", {}) is None
    rich = "Certainly! Here are some tips:\n\n- **Soil**: test it\n- Water often\n\nI hope this helps! \U0001F331"
    plain_ = "Rain forms when water vapour condenses."
    a, b = NORMALISERS["style"](rich, {}), NORMALISERS["style"](plain_, {})
    qs = QuirksScorer()
    assert a.startswith("style:") and qs.pair(a, a) == 1.0 and 0 < qs.pair(a, b) < 1
    assert "bullet" in qs.describe(a) and "emoji" in qs.describe(a) and qs.describe(b) == "style: plain"
    # vectors use the kernel mean over pairs (i != j for the ceiling): unbiased U-statistics
    assert qs.similarity([a, b], [a]) == pytest.approx((1 + qs.pair(a, b)) / 2)
    assert qs.self_similarity([a, a, b]) == pytest.approx((1 + 2 * qs.pair(a, b)) / 3)
    assert qs.pair(a, None) is None and qs.pair(a, "7") is None


def test_quirks_features_never_crash_on_non_text():
    qs = get_scorer("quirks")
    for p in load_battery("quirks").prompts:
        for bad in (None, 42, "", "   "):
            assert qs.features(bad, p) in (None, "none", "list=none;bold=0;head=none") or p.meta["normaliser"] == "format"


# --- n-gram family and distinctive n-grams ---------------------------------------------------

def test_cjk_words_and_char_and_pos_scorers():
    assert words("我是ChatGPT") == ["我", "是", "chatgpt"]
    ch = get_scorer("ngram_char")
    a, b = ch.features("Hello  World", None), ch.features("hello world!", None)
    assert ch.pair(a, a) == 1.0 and 0.8 < ch.pair(a, b) < 1.0
    assert math.isnan(ch.similarity([ch.features("", None)], [ch.features(None, None)]))
    pos = get_scorer("ngram_pos")
    f = pos.features("As an AI language model, I cannot do that. However, I can help.", None)
    assert "IN DT NN NN" in f and all(g.count(" ") + 1 in (4, 5, 6) for g in f)
    same_template = pos.features("As a research assistant, I cannot do this. However, I can explain.", None)
    assert pos.pair(f, same_template) > pos.pair(f, pos.features("Run!", None))
    assert get_scorer("ngram_word").ns == (1, 2, 3, 4)


def test_distinctive_ngrams_find_the_reference_habit():
    from collections import Counter

    from provenance.scorers.distinctive import distinctive_excess, gram_counts, log_odds_z

    topics = [f"topic{i}" for i in range(40)]
    habit = "In short, {t} rewards a patient look. I hope this helps!"
    plain_ = ["{t} are interesting and people like {t} a lot.", "Many facts exist about {t} today.",
              "Here is a note on {t} for you."]

    def counts(tmpl_for):
        return [gram_counts(tmpl_for(i).format(t=t)) for i, t in enumerate(topics)]

    data = {"R": counts(lambda i: habit), "C": counts(lambda i: habit if i % 2 == 0 else plain_[0]),
            "K1": counts(lambda i: plain_[0]), "K2": counts(lambda i: plain_[1]), "K3": counts(lambda i: plain_[2])}
    res = distinctive_excess(data, "C", "R", ["K1", "K2", "K3"])
    assert res["excess"].mean() > 0.2 and res["n_distinctive"] > 5
    assert any(s["ngram"] == "i hope this helps" for s in res["shared"])
    # a control compared on n-grams selected without it scores no excess against another control
    null = distinctive_excess(data, "K1", "R", ["K2", "K3"])
    assert abs(null["excess"].mean()) < 0.05
    assert "error" in distinctive_excess(data, "C", "R", ["K1"])
    z = log_odds_z(Counter({"a b": 10, "c d": 1}), Counter({"c d": 10}))
    assert z["a b"] > 0 > z["c d"]


# --- white-box: the likelihood battery on real zoo models ------------------------------------

def test_likelihood_battery_on_zoo_models(tmp_path, monkeypatch):
    import sqlite3

    import yaml

    from provenance.audit import make_spec, run_audit
    from provenance.models.hf import HFModel

    zoo = ROOT / "fixtures" / "zoo" / "models"
    bat = tmp_path / "ll-small"
    bat.mkdir()
    spec = yaml.safe_load((ROOT / "probes/likelihood/battery.yaml").read_text())
    spec["generation"].update(samples=1, max_new_tokens=20)
    (bat / "battery.yaml").write_text(yaml.safe_dump(spec))
    lines = (ROOT / "probes/likelihood/prompts.jsonl").read_text().splitlines()
    (bat / "prompts.jsonl").write_text("\n".join(lines[:2] + lines[6:8] + lines[21:23]) + "\n")
    audit = make_spec({"candidate": f"hf/{zoo / 'kd-a'}", "references": [f"hf/{zoo / 'teacher-a'}"],
                       "controls": [f"hf/{zoo / 'control-1'}"],
                       "batteries": [str(bat)], "n_resamples": 199, "seed": 0})
    report = run_audit(audit, tmp_path / "out", progress=False)
    (stats,) = [s for s in report["battery_statistics"] if s["kind"] == "likelihood"]
    assert all(c["white_box"] and c["loglikelihood"] == "computed" and c["next_token"] == "computed"
               for c in stats["checks"].values())
    (ll,) = stats["loglikelihood"]
    assert ll["reference"] == "teacher-a" and ll["excess"]["n_prompts"] == 6
    assert ll["reference_answers"] > ll["control_answers"]  # kd-a finds its teacher's answers likelier
    (nt,) = stats["next_token_agreement"]
    assert 0 <= nt["controls"] <= 1 and nt["candidate"] > nt["controls"]
    (res,) = [r for r in report["results"] if r["battery"] == "likelihood"]
    assert 0 < res["similarity"]["estimate"] <= 1
    n_cached = sqlite3.connect(tmp_path / "out" / "store.sqlite").execute(
        "SELECT count(*) FROM loglik_cache").fetchone()[0]
    assert n_cached == 3 * 3 * 6  # each white-box model scores every model's answer to each prompt
    calls = []
    monkeypatch.setattr(HFModel, "loglikelihood", lambda self, pairs: calls.append(len(pairs)) or [])
    again = run_audit(audit, tmp_path / "out", progress=False)
    assert calls == [] and again["results"] == report["results"]
