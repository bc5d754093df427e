"""Self-identification: which makers a response claims to come from, in the first person.

A student distilled from a teacher's answers often keeps the teacher's self-description
("I am ChatGPT, a model trained by OpenAI") unless someone scrubbed it. The feature of a
response is the sorted list of maker keys (from ``provenance/data/lexicon.yaml``) it claims.

Every alias of a maker found in a response is sorted into one of five kinds
(:meth:`SelfIdScorer.analyse`):

``claim``     the model says it *is* that model or was made by that maker, in the first person:

                  I am / I'm / I was / my name is / my creators are / call me / this is
                  + only identity words ("an AI assistant", "a language model", "developed by",
                    "the team at") + the alias

              and the clause-opening "As <identity words + alias>, I ..." form ("As an AI
              language model developed by OpenAI, I ..."). The same in other languages: an
              anchor (我是, 我叫, 私は, 저는, Я, меня зовут, soy, me llamo, je suis, ich bin, sono,
              sou, أنا, मैं, ben, ...) followed only by identity words of that language
              (由...开发的, によって開発された, 에서 개발한, разработан компанией, desarrollado por,
              développé par, entwickelt von, ...) and the alias.
``denial``    the same tie broken only by a negation: "I am not GPT-4", "I'm not affiliated with
              OpenAI", 我不是ChatGPT, 私はChatGPTではありません, Я не ChatGPT, No soy ChatGPT.
``mention``   any other use: a comparison ("unlike ChatGPT", "similar to Claude"), a topic
              ("I am happy to explain how Google ranks pages"), an affiliation that is not the
              speaker's making ("I am a Stanford student").
``quoted``    inside quotation marks of four or more words (or eight CJK characters), fenced
              code, or speaker-labelled dialogue lines ("User: ...", "ChatGPT: ...").
``roleplay``  from a role-play cue ("pretend", "imagine", "if I were", 假设, 扮演, представьте,
              imagina, ...) to the end of its paragraph: the model is not speaking as itself.

The rule is deliberately conservative: a missed claim costs a little power; a false claim
would invent evidence. Two responses match when their claim sets share a maker; a response
that claims nothing matches nothing. Checked against hand labels of real responses
(``tests/data/self_id_labels.jsonl``, ``tests/test_self_id_labels.py``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

from ..errors import ScoringError
from .base import Scorer, block_means

LEXICON_FILE = Path(__file__).resolve().parents[1] / "data" / "lexicon.yaml"
KINDS = ("claim", "denial", "mention", "quoted", "roleplay")

#: letters of scripts written with spaces between words: an alias in them must not touch them
_SPACED = ("A-Za-z0-9_\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF\u05D0-\u05EA\u0620-\u064A\u0660-\u0669"
           "\u066E-\u06D3\u0900-\u0963\u0966-\u097F")
_SPACED_CHAR = re.compile(f"[{_SPACED}]")
_CJK = "\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\uAC00-\uD7AF\u1100-\u11FF\u3130-\u318F"
_MASK = "\x1f"  # stands in for text the model does not speak as itself (keeps offsets)

# --- English anchors: where a first-person statement about the speaker's identity starts ---

_ANCHORS = re.compile(
    r"(?=[IiMmCcYyTt])(?:"  # a guard: only where an anchor can start (one big alternation is slow)
    r"\bI(?:\s+am|['\u2019]m|m)\b"
    r"|\bI\s+was\b"
    r"|\bI\s+(?:have|['\u2019]ve)\s+been\b"
    r"|\bI\s+(?:come|came)\s+from\b"
    r"|\bI\s+belong\s+to\b"
    r"|\bmy\s+(?:name|creators?|developers?|makers?|parent\s+company|company|team|trainers?|authors?"
    r"|builders?|designers?|engineers?|origins?)\b"
    r"|\bcall\s+me\b"
    r"|\byou(?:\s+are|['\u2019]re)\s+(?:talking|chatting|speaking)\s+(?:to|with)\b"
    r"|\bthis\s+is\b)",
    re.IGNORECASE,
)
#: "As ..., I": an identity phrase opening a clause, followed by the speaker
_AS_ANCHOR = re.compile(r"(?:^|[,;:(]|\b(?:but|and|so|well|yes|sure)\b)\s*,?\s*\bas\b", re.IGNORECASE)
_AS_TAIL = re.compile(r",\s*(?:I\b|I['\u2019]m\b|my\b|me\b)", re.IGNORECASE)

#: words that may stand between an anchor and a claimed alias
_VOCAB = frozenset("""
a an the of by from at with on for as to you is are was were been am 's
ai artificial intelligence language languages model models large llm assistant assistants chatbot chat bot
conversational virtual digital helpful friendly research open source open-source generative pretrained
pre-trained neural network system program software agent version variant instance edition release
latest new newer called named known simply just actually also originally currently here now proudly
powered based built created made developed trained designed programmed fine-tuned finetuned tuned fine
owned released launched produced maintained engineered provided offered brought run operated hosted
team teams engineers researchers scientists developers people folks company organization organisation
lab labs group product creation project part family series member affiliated associated
""".split())
#: words after which the next name is what the phrase is about ("made by X", "called X")
_LINKERS = frozenset("by from at of called named as on with for".split())
#: words that carry no content ("I am the X", "I am OpenAI's X")
_EMPTY = frozenset("a an the 's".split())
#: identity nouns an appositive may follow ("I am an AI assistant, Claude")
_DESCRIPTORS = frozenset("ai assistant chatbot bot model llm system agent program version variant".split())
_PARTICIPLES = frozenset("""built created made developed trained designed programmed fine-tuned finetuned tuned
owned released launched produced maintained engineered provided offered powered based run operated hosted""".split())
_NEGATIONS = frozenset("not n't never no".split())
_TOKEN = re.compile(r"ALIAS|n['\u2019]t\b|['\u2019]s\b|[A-Za-z]+(?:[-'\u2019][A-Za-z]+)*|\d+(?:\.\d+)?|\S")
_PUNCT_OK = frozenset(",()-\u2013\u2014:")
#: after an appositive alias, a verb means the alias is a new subject ("..., Google is a company")
_VERB_AFTER = re.compile(r"\s*(?:is|are|was|were|has|have|had|does|did|can|could|will|would|should|may|might|"
                         r"must|says|said|makes|made|offers|uses|provides)\b", re.IGNORECASE)
#: "I am a Stanford student": the alias qualifies another noun, it is not the speaker's maker
_AFFILIATION_AFTER = re.compile(
    r"[\s'\u2019s]*(?:student|students|graduate|grad|alumn\w*|fan|fans|user|users|customer|customers|employee|"
    r"employees|intern|shareholder|stockholder|enthusiast|professor|account|subscriber|"
    r"\u7684(?:\u5b66\u751f|\u6bd5\u4e1a\u751f|\u7528\u6237|\u5458\u5de5|\u7c89\u4e1d|\u6821\u53cb))", re.IGNORECASE)

# --- other languages ------------------------------------------------------------------------
# First-person anchors, identity words (fillers) and negations, by language. Fillers of
# CJK scripts are stripped from a run of characters (no spaces there); fillers of spaced
# scripts must be whole words.

_ML_ANCHORS = re.compile("(?=[\u6211\u672c\u4f5c\u79c1\u308f\u50d5\u307c\u3042\u5f53\u79c1\uc800\ub098\uc81c\ub0b4\u044f\u043c\u0432"
                         "yYnNsSjJeEiIfFmMbBaA\u0623\u0627\u062a\u0637\u062f\u092e])(?:" + "|".join([
    r"\u6211(?=\u4e0d|\u5e76\u4e0d|\u5e76\u975e)|\u6211\u662f|\u6211\u53eb|\u6211\u540d\u53eb|\u6211\u7684\u540d\u5b57(?:\u662f|\u53eb)|\u672c\u4eba\u662f"
    r"|\u6211\u7531|\u6211\u88ab|\u6211\u6765\u81ea|\u6211\u5c5e\u4e8e|\u6211\u4e43",  # zh: 我是 我叫 ...
    r"\u4f5c\u4e3a(?=[^\u3002\uff01\uff1f]*[\uff0c,]\s*\u6211)",  # zh: 作为 ..., 我
    r"(?:\u79c1|\u308f\u305f\u3057|\u50d5|\u307c\u304f|\u3042\u305f\u3057)(?:\u306e\u540d\u524d)?\u306f",  # ja: 私は 私の名前は
    r"(?:\u5f53\u65b9|\u79c1\u3069\u3082)\u306f",
    r"\uc800\ub294|\ub098\ub294|\uc81c\s*\uc774\ub984\uc740|\ub0b4\s*\uc774\ub984\uc740|\uc800\uc758\s*\uc774\ub984\uc740",  # ko
    r"\b\u044f\b(?:\s*[\u2014\u2013-])?|\b\u043c\u0435\u043d\u044f\s+\u0437\u043e\u0432\u0443\u0442\b"
    r"|\b\u043c\u043e[\u0451\u0435]\s+\u0438\u043c\u044f\b",  # ru: я, меня зовут, моё имя
    r"\b\u0432\s+\u043a\u0430\u0447\u0435\u0441\u0442\u0432\u0435\b(?=[^.!?]*,\s*\u044f\b)",  # ru: в качестве ..., я
    r"\b(?:yo\s+)?(?:no\s+)?soy\b|\bme\s+llamo\b|\bmi\s+nombre\s+es\b",  # es
    r"\bje\s+(?:ne\s+)?suis\b|\bje\s+m['\u2019]appelle\b|\bmon\s+nom\s+est\b|\bj['\u2019]ai\s+\u00e9t\u00e9\b"
    r"|\ben\s+tant\s+que\b(?=[^.!?]*,\s*(?:je|j['\u2019]))",  # fr
    r"\bich\s+bin\b|\bich\s+hei(?:\u00df|ss)e\b|\bmein\s+name\s+ist\b|\bich\s+wurde\b",  # de
    r"\b(?:io\s+)?(?:non\s+)?sono\b|\bmi\s+chiamo\b|\bil\s+mio\s+nome\s+\u00e8\b",  # it
    r"\b(?:eu\s+)?(?:n[\u00e3a]o\s+)?sou\b|\bmeu\s+nome\s+\u00e9\b|\bme\s+chamo\b|\bfui\b",  # pt (and es "fui")
    r"\u0623\u0646\u0627|\u0627\u0633\u0645\u064a|\u062a\u0645\s+\u062a\u0637\u0648\u064a\u0631\u064a"
    r"|\u062a\u0645\s+\u062a\u062f\u0631\u064a\u0628\u064a|\u0637\u0648\u0631\u062a\u0646\u064a"
    r"|\u062f\u0631\u0628\u062a\u0646\u064a",  # ar: أنا اسمي تم تطويري ...
    r"\u092e\u0948\u0902|\u092e\u0947\u0930\u093e\s+\u0928\u093e\u092e",  # hi: मैं, मेरा नाम
    r"\bben\b|\bbenim\s+ad\u0131m\b|\bad\u0131m\b",  # tr
]) + ")", re.IGNORECASE)

_FILLER_WORDS = frozenset("""
un una uno unos el la lo los las de del por me llamo mi nombre es fui creado creada desarrollado
desarrollada entrenado entrenada dise\u00f1ado dise\u00f1ada hecho hecha modelo lenguaje grande gran asistente
virtual inteligencia artificial ia chatbot empresa equipo compa\u00f1\u00eda versi\u00f3n llamado llamada
je suis une le l de du des par m appelle mon nom est j ai \u00e9t\u00e9 cr\u00e9\u00e9 cr\u00e9\u00e9e
d\u00e9velopp\u00e9 d\u00e9velopp\u00e9e entra\u00een\u00e9 entra\u00een\u00e9e con\u00e7u con\u00e7ue mod\u00e8le langage grand
assistant virtuel intelligence artificielle agent conversationnel entreprise \u00e9quipe soci\u00e9t\u00e9 appel\u00e9
ich bin ein eine einer eines der die das von vom hei\u00dfe heisse mein name ist wurde worden entwickelt
trainiert erstellt entworfen gebaut entwickeltes entwickelter entwickelte trainiertes trainierter
sprachmodell ki assistent ki-assistent gro\u00dfes grosses gro\u00dfer modell k\u00fcnstliche intelligenz unternehmen
firma team genannt
sono io il di del della dello da dal dalla mi chiamo mio nome \u00e8 stato stata creato creata sviluppato
sviluppata addestrato addestrata modello linguistico assistente virtuale intelligenza artificiale azienda
squadra versione chiamato
eu sou um uma o a do da dos das pela pelo meu me chamo criado criada desenvolvido desenvolvida treinado
treinada linguagem intelig\u00eancia empresa equipe vers\u00e3o chamado
\u044f \u044d\u0442\u043e \u043c\u0435\u043d\u044f \u0437\u043e\u0432\u0443\u0442 \u043c\u043e\u0451 \u043c\u043e\u0435 \u0438\u043c\u044f \u0431\u044b\u043b \u0431\u044b\u043b\u0430 \u044f\u0432\u043b\u044f\u044e\u0441\u044c \u0441\u043e\u0437\u0434\u0430\u043d \u0441\u043e\u0437\u0434\u0430\u043d\u0430 \u0441\u043e\u0437\u0434\u0430\u043d\u043d\u044b\u0439
\u0441\u043e\u0437\u0434\u0430\u043d\u043d\u0430\u044f \u0440\u0430\u0437\u0440\u0430\u0431\u043e\u0442\u0430\u043d \u0440\u0430\u0437\u0440\u0430\u0431\u043e\u0442\u0430\u043d\u0430 \u0440\u0430\u0437\u0440\u0430\u0431\u043e\u0442\u0430\u043d\u043d\u044b\u0439 \u0440\u0430\u0437\u0440\u0430\u0431\u043e\u0442\u0430\u043d\u043d\u0430\u044f \u043e\u0431\u0443\u0447\u0435\u043d \u043e\u0431\u0443\u0447\u0435\u043d\u0430
\u043e\u0431\u0443\u0447\u0435\u043d\u043d\u044b\u0439 \u043e\u0431\u0443\u0447\u0435\u043d\u043d\u0430\u044f \u043a\u043e\u043c\u043f\u0430\u043d\u0438\u0435\u0439 \u043a\u043e\u043c\u043f\u0430\u043d\u0438\u0438 \u043a\u043e\u043c\u0430\u043d\u0434\u043e\u0439 \u043a\u043e\u043c\u0430\u043d\u0434\u044b \u043e\u0442 \u0438 \u0438\u0441\u043a\u0443\u0441\u0441\u0442\u0432\u0435\u043d\u043d\u044b\u0439 \u0438\u043d\u0442\u0435\u043b\u043b\u0435\u043a\u0442
\u0438\u0438 \u0430\u0441\u0441\u0438\u0441\u0442\u0435\u043d\u0442 \u043f\u043e\u043c\u043e\u0449\u043d\u0438\u043a \u0447\u0430\u0442-\u0431\u043e\u0442 \u0447\u0430\u0442\u0431\u043e\u0442 \u044f\u0437\u044b\u043a\u043e\u0432\u0430\u044f \u044f\u0437\u044b\u043a\u043e\u0432\u043e\u0439 \u043c\u043e\u0434\u0435\u043b\u044c \u043c\u043e\u0434\u0435\u043b\u0438 \u0431\u043e\u043b\u044c\u0448\u0430\u044f \u0431\u043e\u043b\u044c\u0448\u043e\u0439 \u043d\u0435\u0439\u0440\u043e\u0441\u0435\u0442\u044c
\u043f\u0440\u043e\u0433\u0440\u0430\u043c\u043c\u0430 \u0432\u0435\u0440\u0441\u0438\u044f \u0432 \u043a\u0430\u0447\u0435\u0441\u0442\u0432\u0435 \u043d\u0430\u0437\u044b\u0432\u0430\u0435\u043c\u0430\u044f
\u0623\u0646\u0627 \u0627\u0633\u0645\u064a \u062a\u0645 \u062a\u0637\u0648\u064a\u0631\u064a \u062a\u062f\u0631\u064a\u0628\u064a \u0628\u0648\u0627\u0633\u0637\u0629 \u0645\u0646 \u0642\u0628\u0644 \u0646\u0645\u0648\u0630\u062c \u0644\u063a\u0648\u064a \u0645\u0633\u0627\u0639\u062f \u0630\u0643\u0627\u0621 \u0627\u0635\u0637\u0646\u0627\u0639\u064a
\u0627\u0644\u0630\u0643\u0627\u0621 \u0627\u0644\u0627\u0635\u0637\u0646\u0627\u0639\u064a \u0634\u0631\u0643\u0629 \u0641\u0631\u064a\u0642 \u0643\u0628\u064a\u0631 \u0644\u063a\u0629 \u0645\u0637\u0648\u0631 \u0637\u0648\u0631\u062a\u0647
\u092e\u0948\u0902 \u0939\u0942\u0901 \u0939\u0942\u0902 \u092e\u0947\u0930\u093e \u0928\u093e\u092e \u0939\u0948 \u090f\u0915 \u0926\u094d\u0935\u093e\u0930\u093e \u092c\u0928\u093e\u092f\u093e \u0917\u092f\u093e \u0935\u093f\u0915\u0938\u093f\u0924 \u092a\u094d\u0930\u0936\u093f\u0915\u094d\u0937\u093f\u0924 \u092d\u093e\u0937\u093e
\u092e\u0949\u0921\u0932 \u0938\u0939\u093e\u092f\u0915 \u0915\u0943\u0924\u094d\u0930\u093f\u092e \u092c\u0941\u0926\u094d\u0927\u093f\u092e\u0924\u094d\u0924\u093e \u090f\u0906\u0908 \u0915\u0902\u092a\u0928\u0940 \u0915\u0940
ben benim ad\u0131m bir taraf\u0131ndan geli\u015ftirildim geli\u015ftirilen e\u011fitildim e\u011fitilen yapay zeka zek\u00e2 asistan\u0131
asistan dil modeli modeliyim \u015firketi ekibi
""".split()) | _VOCAB
#: identity words of scripts without spaces (stripped from a run of characters, longest first)
_CJK_FILLERS = sorted(set("""
一个 一款 一种 一名 一位 个 款 由 的 是 人工智能 智能 助手 助理 语言模型 大语言模型 大型 大 模型 聊天机器人 机器人 对话 开发 研发
训练 创建 创造 推出 打造 构建 设计 公司 团队 实验室 旗下 基于 和 与 共同 名为 叫做 叫 称为 版本 最新 被 所 来自 属于 您好 你好
私 は が の です でございます と 申します いいます 言います によって により で 開発 された 訓練 作られた 作成 トレーニング
設計 アシスタント 人工知能 言語モデル 大規模 モデル チャットボット 会社 社 チーム 企業 した 一つ ある AI として
는 은 이 가 의 에서 에 의해 저 제 나 내 이름 입니다 이에요 예요 라고 합니다 개발한 개발된 개발 훈련된 훈련한 만든 만들어진 인공지능
어시스턴트 비서 언어 모델 대규모 챗봇 회사 팀 인 으로 로 한 된
""".split()), key=len, reverse=True)
_CJK_FILLER_RUN = re.compile("(?:" + "|".join(re.escape(w) for w in _CJK_FILLERS) + r")+", re.IGNORECASE)
_ML_NEGATIONS = re.compile(
    r"\u4e0d\u662f|\u5e76\u975e|\u5e76\u4e0d|\u4e0d|\u975e"  # zh: 不是 并非 并不 不 非
    r"|\u3067\u306f\u3042\u308a\u307e\u305b\u3093|\u3067\u306f\u306a\u3044|\u3058\u3083\u306a\u3044|\u3058\u3083\u3042\u308a\u307e\u305b\u3093"  # ja
    r"|\uc544\ub2d9\ub2c8\ub2e4|\uc544\ub2c8\uc5d0\uc694|\uc544\ub2c8\ub2e4|\uc544\ub2cc|\uc544\ub2c8"  # ko
    r"|\b(?:\u043d\u0435|\u043d\u0435\u0442|no|n\u00e3o|non|ne|pas|nicht|kein|keine|keiner|kein\w*|de\u011fil\w*)\b"
    r"|\u0644\u0633\u062a|\u0644\u064a\u0633|\u0644\u0627|\u0928\u0939\u0940\u0902", re.IGNORECASE)
_ML_TOKEN = re.compile(r"ALIAS|[\w\u0900-\u097F]+(?:[-'\u2019][\w\u0900-\u097F]+)*|\S")
_CJK_RUN = re.compile(f"[{_CJK}]")
_RIGHT_NEGATION = re.compile(
    r"^[^\u3002.!?\uff01\uff1f\n,\uff0c\u3001]{0,12}?(?:\u3067\u306f\u3042\u308a\u307e\u305b\u3093|\u3067\u306f\u306a\u3044"
    r"|\u3058\u3083\u306a\u3044|\u3058\u3083\u3042\u308a\u307e\u305b\u3093|\uac00\s*\uc544\ub2d9\ub2c8\ub2e4|\uc774\s*\uc544\ub2d9\ub2c8\ub2e4"
    r"|\uac00\s*\uc544\ub2c8|\uc774\s*\uc544\ub2c8|\uc544\ub2d9\ub2c8\ub2e4)")

# --- text that is not the model speaking as itself -----------------------------------------

_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_QUOTE = re.compile(r"[\"\u201c\u00ab\u300c\u300e]([^\"\u201c\u201d\u00ab\u00bb\u300c\u300d\u300e\u300f]*)"
                    r"[\"\u201d\u00bb\u300d\u300f]")
_SPEAKER = re.compile(
    r"^\s*[*_]*(?:user|human|assistant|ai|bot|system|q|a|me|you|customer|agent|narrator|interviewer"
    r"|character|speaker|person|\u7528\u6237|\u52a9\u624b|\u4eba\u7c7b)(?:\s*\w)?[*_]*\s*[:\uff1a]", re.IGNORECASE)
_ROLEPLAY = re.compile(
    r"(?=[prihsfjtPRIHSFJT\u043f\u0440\u041f\u0420\u5047\u626e\u60f3\u89d2\u30ed\u6f14\u306e\uc5ed\uc0c1\ucc99])(?:"
    r"\b(?:pretend\w*|role[- ]?play\w*|imagin\w+|if I were|in character|playing the (?:role|part)"
    r"|hypothetical\w*|suppose|\u043f\u0440\u0435\u0434\u0441\u0442\u0430\u0432\w*|\u043f\u0440\u0438\u0442\u0432\u043e\u0440\w*"
    r"|\u0440\u043e\u043b\u0435\u0432\w*|finj\w*|sup\u00f3n\w*|supon\w*|fais\s+semblant|jeu\s+de\s+r\u00f4le"
    r"|stell\s+dir\s+vor|rollenspiel\w*|tu\s+so,?\s+als)\b"
    r"|\u5047\u8bbe|\u626e\u6f14|\u5047\u88c5|\u60f3\u8c61|\u89d2\u8272\u626e\u6f14|\u30ed\u30fc\u30eb\u30d7\u30ec\u30a4"
    r"|\u6f14\u3058|\u306e\u3075\u308a|\u60f3\u50cf|\uc5ed\ud560\uadf9|\uc0c1\uc0c1|\ucc99\ud558)",
    re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])(?<!\b[A-Za-z]\.)\s+|(?<=[\u3002\uff01\uff1f])|\n")
_ACRONYM_AI = re.compile(r"\bA\.I\.?(?=\W|$)")


@dataclass(frozen=True)
class Mention:
    """One alias of a maker in a response: its kind (``claim``, ``denial``, ``mention``,
    ``quoted`` or ``roleplay``), the maker key, the alias as written and its offsets."""

    maker: str
    alias: str
    kind: str
    start: int
    end: int


#: kept for callers of the first version: a claim is a mention of kind "claim"
Claim = Mention


class Lexicon:
    """Makers and their aliases, compiled into one regex (longest alias first)."""

    def __init__(self, path: Path | str = LEXICON_FILE):
        self.path = Path(path)
        try:
            raw = self.path.read_bytes()
            data = yaml.safe_load(raw.decode("utf-8"))
        except FileNotFoundError:
            raise ScoringError(f"{self.path}: lexicon file not found; restore it from git") from None
        except UnicodeDecodeError:
            raise ScoringError(f"{self.path}: lexicon is not UTF-8 text; save it as UTF-8") from None
        except yaml.YAMLError as e:
            raise ScoringError(f"{self.path}: not valid YAML ({_one_line(e)}); fix the syntax") from None
        self.sha256 = hashlib.sha256(raw).hexdigest()
        makers = (data or {}).get("makers") if isinstance(data, dict) else None
        if not isinstance(makers, dict) or not makers:
            raise ScoringError(f"{self.path}: needs a 'makers' mapping of maker key -> entry; see its header")
        self.display: dict[str, str] = {}
        self.persona: dict[str, str] = {}
        self.aliases: dict[str, list[str]] = {}
        alts: list[tuple[int, str, str]] = []  # (sort length, regex, maker)
        for key, entry in makers.items():
            key = str(key)
            if not isinstance(entry, dict):
                raise ScoringError(f"{self.path}: makers.{key} must be a mapping with names/cased/patterns")
            unknown = sorted(set(entry) - {"display", "names", "cased", "patterns", "persona"})
            if unknown:
                raise ScoringError(f"{self.path}: makers.{key}.{unknown[0]} is not a known field (display, names, "
                                   f"cased, patterns, persona); remove or rename it")
            self.display[key] = str(entry.get("display") or key)
            if entry.get("persona"):
                self.persona[str(entry["persona"])] = key
            self.aliases[key] = []
            for field, cased in (("names", False), ("cased", True)):
                names = entry.get(field) or []
                if not isinstance(names, list) or not all(isinstance(n, (str, int, float)) for n in names):
                    raise ScoringError(f"{self.path}: makers.{key}.{field} must be a list of strings")
                for name in names:
                    name = str(name).strip()
                    if not name:
                        raise ScoringError(f"{self.path}: makers.{key}.{field} has an empty name; remove it")
                    rx = _bounded(re.escape(name).replace(r"\ ", r"\s+"), name)
                    alts.append((len(name), rx if cased else f"(?i:{rx})", key))
                    self.aliases[key].append(name)
            patterns = entry.get("patterns") or []
            if not isinstance(patterns, list):
                raise ScoringError(f"{self.path}: makers.{key}.patterns must be a list of regular expressions")
            for i, pat in enumerate(patterns):
                try:
                    compiled = re.compile(pat, re.IGNORECASE)
                except (re.error, TypeError) as e:
                    raise ScoringError(f"{self.path}: makers.{key}.patterns[{i}] is not a valid regex "
                                       f"({e}); fix or remove it") from None
                if compiled.groups:
                    raise ScoringError(f"{self.path}: makers.{key}.patterns[{i}] has a capturing group; "
                                       f"write (?:...) instead of (...)")
                if compiled.match(""):
                    raise ScoringError(f"{self.path}: makers.{key}.patterns[{i}] matches empty text; "
                                       f"make it match a name")
                alts.append((len(pat), f"(?i:{_bounded(pat, 'a')})", key))
            if not any(entry.get(f) for f in ("names", "cased", "patterns")):
                raise ScoringError(f"{self.path}: makers.{key} has no names, cased names or patterns; add one")
        alts.sort(key=lambda a: -a[0])
        self.finder = _AliasFinder(alts)
        self.regex = self.finder  # .match(text, pos) and .finditer(text, start, end), as a compiled regex

    def find(self, text: str, start: int = 0, end: int | None = None):
        """(start, end, maker) of every alias in ``text`` (or in ``text[start:end]``)."""
        for s, e, maker in self.finder.spans(text, start, len(text) if end is None else end):
            yield s, e, maker


class _AliasFinder:
    """Leftmost-longest search for hundreds of aliases at once. One big alternation would try
    every alias at every character; here the aliases are grouped by their first letter and only
    tried where a word starts (or at any CJK character)."""

    _CANDIDATE = re.compile(f"(?<![{_SPACED}])[{_SPACED}]|[{_CJK}]|[^\\s{_SPACED}{_CJK}]")

    def __init__(self, alts: list[tuple[int, str, str]]):
        buckets: dict[str, list[tuple[str, str]]] = {}
        anywhere: list[tuple[str, str]] = []
        for _, rx, maker in alts:
            first = _first_char(rx)
            (buckets.setdefault(first, []) if first else anywhere).append((rx, maker))
        self._buckets = {k: self._compile(v + anywhere) for k, v in buckets.items()}
        self._anywhere = self._compile(anywhere) if anywhere else None

    @staticmethod
    def _compile(items: list[tuple[str, str]]):
        return re.compile("|".join(f"({rx})" for rx, _ in items)), [m for _, m in items]

    def _at(self, text: str, pos: int, end: int):
        rx, makers = self._buckets.get(text[pos].lower(), self._anywhere or (None, None))
        if rx is None:
            return None
        m = rx.match(text, pos, end)
        return (m, makers[m.lastindex - 1]) if m else None

    def spans(self, text: str, start: int, end: int):
        last = start
        for c in self._CANDIDATE.finditer(text, start, end):
            pos = c.start()
            if pos < last:
                continue
            hit = self._at(text, pos, end)
            if hit:
                m, maker = hit
                last = m.end()
                yield m.start(), m.end(), maker

    # the parts of the compiled-regex interface the scorer uses
    def match(self, text: str, pos: int = 0, end: int | None = None):
        hit = self._at(text, pos, len(text) if end is None else end) if pos < len(text) else None
        return hit[0] if hit else None

    def finditer(self, text: str, start: int = 0, end: int | None = None):
        for s, e, _ in self.spans(text, start, len(text) if end is None else end):
            yield _Span(s, e)


@dataclass(frozen=True)
class _Span:
    _s: int
    _e: int

    def start(self) -> int:
        return self._s

    def end(self) -> int:
        return self._e


def _first_char(rx: str) -> str | None:
    """The lowercased first character every match of the alias regex ``rx`` starts with, or
    None when it cannot be told (a user's pattern)."""
    core = re.sub(r"^(?:\(\?i:)?(?:\(\?<!\[[^\]]*\]\))?(?:\(\?:)?", "", rx)
    if not core:
        return None
    ch = core[0]
    if ch == "\\" and len(core) > 1 and not core[1].isalnum():
        return core[1].lower()
    if ch.isalnum() or ch in "\u4e00" or ord(ch) > 127:
        return ch.lower()
    return None


def _bounded(rx: str, name: str) -> str:
    """``rx`` with word boundaries on the sides where the alias is written in a spaced script."""
    left = f"(?<![{_SPACED}])" if _SPACED_CHAR.match(name[:1]) else ""
    right = f"(?![{_SPACED}])" if _SPACED_CHAR.match(name[-1:]) else ""
    return f"{left}(?:{rx}){right}"


class SelfIdScorer(Scorer):
    """Makers a response claims in the first person (see the module docstring)."""

    name: ClassVar[str] = "self_id"
    vectorised: ClassVar[bool] = True
    features_use_prompt: ClassVar[bool] = False

    def __init__(self, lexicon_path: Path | str = LEXICON_FILE):
        self.lexicon_path = Path(lexicon_path)

    @cached_property
    def lexicon(self) -> Lexicon:
        return Lexicon(self.lexicon_path)

    def data_hash(self) -> str | None:
        return self.lexicon.sha256

    def check_data(self) -> str | None:
        try:
            self.lexicon
        except ScoringError as e:
            return str(e)
        return None

    def analyse(self, text: str) -> list[Mention]:
        """Every alias in ``text`` with its kind, in order (offsets refer to ``text``)."""
        if not isinstance(text, str) or not text:
            return []
        lex = self.lexicon
        speaking, masked = _speaking(text, lex.regex)
        out: list[Mention] = []
        for start, end, maker in lex.find(text):
            kind = masked.get(start)
            if kind is None and _MASK in speaking[start:end]:
                kind = "quoted"
            out.append(Mention(maker, text[start:end], kind or "", start, end))
        if all(m.kind for m in out):
            return out
        result = {(m.start, m.end): m for m in out if m.kind}
        for sent, offset in _sentences(speaking):
            aliases = [(s - offset, e - offset, mk) for s, e, mk in ((m.start, m.end, m.maker) for m in out)
                       if offset <= s and e <= offset + len(sent) and not result.get((s, e))]
            if not aliases:
                continue
            anchors = [(m.start(), m.end()) for m in _ANCHORS.finditer(sent)]
            ml_anchors = [(m.start(), m.end()) for m in _ML_ANCHORS.finditer(sent)]
            for start, end, maker in aliases:
                kind = _classify(sent, start, end, anchors, ml_anchors, aliases)
                result[(start + offset, end + offset)] = Mention(maker, text[start + offset:end + offset], kind,
                                                                 start + offset, end + offset)
        return [result[(m.start, m.end)] for m in out]

    def claims(self, text: str) -> list[Mention]:
        """The first-person claims in ``text``, in order."""
        return [m for m in self.analyse(text) if m.kind == "claim"]

    def classify(self, text: str) -> dict[str, list[str]]:
        """Maker keys by kind: ``{"claim": [...], "denial": [...], ...}`` (sorted, each once)."""
        out: dict[str, set[str]] = {k: set() for k in KINDS}
        for m in self.analyse(text):
            out[m.kind].add(m.maker)
        return {k: sorted(v) for k, v in out.items()}

    def features(self, text: str, prompt: Any = None) -> list[str]:
        return sorted({m.maker for m in self.claims(text if isinstance(text, str) else "")})

    def pair(self, a: list[str], b: list[str]) -> float:
        return 1.0 if set(a) & set(b) else 0.0

    def score_prompt(self, per_model: list[list[Any]]) -> np.ndarray:
        """All pairs of models at once: claims as a binary (samples x makers) matrix X; two
        samples match when (X X^T) counts a shared maker."""
        index: dict[str, int] = {}
        rows = [[index.setdefault(m, len(index)) for m in f] for per in per_model for f in per]
        x = np.zeros((len(rows), len(index)))
        for i, r in enumerate(rows):
            x[i, r] = 1.0
        return block_means(((x @ x.T) > 0).astype(float), [len(per) for per in per_model])

    def describe(self, feature: list[str]) -> str:
        if not feature:
            return "no claim"
        return "claims " + ", ".join(self.lexicon.display.get(k, k) for k in feature)


# --- helpers --------------------------------------------------------------------------------

def clean(text: str) -> str:
    """``text`` with fenced code and long quotations masked (same length, so offsets hold);
    short quoted names keep their text."""
    return _speaking(text, None)[0]


def _mask(text: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if text[i] != "\n":
            text[i] = _MASK


def _speaking(text: str, alias_rx: re.Pattern | None) -> tuple[str, dict[int, str]]:
    """``text`` with every part the model does not say as itself masked, and the kind
    ("quoted" or "roleplay") of each masked alias start offset."""
    chars = list(_ACRONYM_AI.sub(lambda m: "AI" + " " * (len(m.group(0)) - 2), text))
    kinds: dict[int, str] = {}
    regions: list[tuple[int, int, str]] = []
    for m in _FENCE.finditer(text):
        regions.append((m.start(), m.end(), "quoted"))
    for m in _QUOTE.finditer(text):
        inner = m.group(1)
        if len(inner.split()) >= 4 or len(_CJK_RUN.findall(inner)) >= 8:
            regions.append((m.start(), m.end(), "quoted"))
        else:  # a short quoted name: keep it, drop the marks
            chars[m.start()] = " "
            chars[m.end() - 1] = " "
    pos = 0
    for para in re.split(r"(\n\s*\n)", text):
        start = pos
        pos += len(para)
        if not para.strip() or para.startswith("\n"):
            continue
        roleplay_from = None
        for line_m in re.finditer(r"[^\n]+", para):
            line = line_m.group(0)
            a = start + line_m.start()
            if roleplay_from is not None:
                continue
            if _SPEAKER.match(line) or (alias_rx is not None and _labelled_by_alias(line, alias_rx)):
                regions.append((a, a + len(line), "quoted"))
                continue
            cue = _ROLEPLAY.search(line)
            if cue:
                # from the start of the sentence holding the cue to the end of the paragraph
                s = max((m.end() for m in _SENTENCE.finditer(line[:cue.start()])), default=0)
                roleplay_from = a + s
        if roleplay_from is not None:
            regions.append((roleplay_from, start + len(para), "roleplay"))
    for s, e, kind in regions:
        _mask(chars, s, e)
        if alias_rx is not None:
            for m in alias_rx.finditer(text, s, e):
                kinds.setdefault(m.start(), kind)
    return "".join(chars), kinds


def _sentences(text: str):
    """(sentence, offset) of the sentences and lines of ``text``."""
    i = 0
    for piece in _SENTENCE.split(text):
        j = text.index(piece, i) if piece else i
        i = j + len(piece)
        if piece.strip() and piece.strip(_MASK + " \t"):
            yield piece, j


def _labelled_by_alias(line: str, alias_rx: re.Pattern) -> bool:
    m = re.match(r"\s*[*_]*", line)
    a = alias_rx.match(line, m.end())
    return bool(a) and re.match(r"[*_]*\s*[:\uff1a]", line[a.end():]) is not None


def _identity_words(span: str, *, allow_negation: bool = False) -> list[str] | None:
    """The words of ``span`` if all are identity words, aliases (ALIAS), harmless punctuation
    (and, with ``allow_negation``, negations); None as soon as one is not."""
    tokens = [t.lower().replace("\u2019", "'") for t in _TOKEN.findall(span)]
    words = []
    for k, t in enumerate(tokens):
        if t in _PUNCT_OK:
            continue
        if t == "and":  # only "created and trained by", never "... and Google is"
            if (tokens[k + 1] if k + 1 < len(tokens) else "") not in _PARTICIPLES:
                return None
        elif t == "alias" or t in _VOCAB or re.fullmatch(r"\d+(?:\.\d+)?", t):
            words.append(t)
        elif allow_negation and t in _NEGATIONS:
            words.append("<neg>")
        else:
            return None
    return words


def _span_ok(span: str, *, appositive_tail: str | None, allow_negation: bool = False) -> bool:
    """Whether the words between an anchor and an alias (other aliases as ALIAS) tie them."""
    words = _identity_words(span, allow_negation=allow_negation)
    if words is None:
        return False
    content = [w for w in words if w not in _EMPTY and w not in ("alias", "<neg>")]
    if not content:
        return True
    if words[-1] in _LINKERS:
        return True
    # appositive: "I am an AI assistant, Claude" / "I am a language model (GPT-4)"
    stripped = span.rstrip()
    if stripped and stripped[-1] in ",(:-\u2013\u2014" and words[-1] in _DESCRIPTORS | {"alias"}:
        return appositive_tail is None or not _VERB_AFTER.match(appositive_tail)
    return False


def _masked(sent: str, lo: int, hi: int, aliases) -> str:
    """sent[lo:hi] with every alias inside it replaced by the token ALIAS."""
    out, i = [], lo
    for s, e, _ in aliases:
        if s >= lo and e <= hi:
            out.append(sent[i:s])
            out.append(" ALIAS ")
            i = e
    out.append(sent[i:hi])
    return "".join(out)


def _ml_span(span: str) -> str | None:
    """"tie" if ``span`` holds only identity words of any language (and aliases), "neg" if it
    holds those and a negation, None otherwise."""
    neg = False
    rest = _ML_NEGATIONS.sub(" NEG ", span)
    for t in _ML_TOKEN.findall(rest):
        low = t.lower().replace("\u2019", "'")
        if t in ("ALIAS",) or low in _FILLER_WORDS or t in "-\u2013\u2014:,\uff0c\u3001\u060c()\uff08\uff09" \
                or re.fullmatch(r"\d+(?:\.\d+)?", t):
            continue
        if t == "NEG":
            neg = True
            continue
        if _CJK_RUN.search(t) and _CJK_FILLER_RUN.fullmatch(t):
            continue
        if _CJK_RUN.search(t):
            # a CJK run mixed with Latin letters: strip fillers and look at what is left
            left = _CJK_FILLER_RUN.sub("", t)
            if not left or left.lower() in _FILLER_WORDS:
                continue
        return None
    return "neg" if neg else "tie"


def _classify(sent: str, start: int, end: int, anchors, ml_anchors, aliases) -> str:
    tail = sent[end:]
    if _claimed(sent, start, end, anchors, aliases) or _claimed_as(sent, start, end, aliases):
        kind = "claim"
    elif _claimed(sent, start, end, anchors, aliases, allow_negation=True):
        return "denial"
    else:
        kind = None
        before = [a for a in ml_anchors if a[1] <= start]
        if before:
            a0, a1 = before[-1]
            verdict = _ml_span(_masked(sent, a1, start, aliases))
            if verdict == "tie" and _ML_NEGATIONS.search(sent[a0:a1]):  # "no soy", "我(不是)"
                verdict = "neg"
            kind = {"tie": "claim", "neg": "denial"}.get(verdict or "")
        if kind is None:
            return "mention"
        if kind == "denial":
            return kind
    if _RIGHT_NEGATION.match(tail):
        return "denial"
    if _AFFILIATION_AFTER.match(tail) and not _linked(sent, start, anchors + ml_anchors):
        return "mention"
    return kind


def _linked(sent: str, start: int, anchors) -> bool:
    """Whether the word just before the alias is a linker ("made by X", "由X")."""
    before = sent[:start].rstrip().lower()
    return bool(re.search(r"(?:\b(?:by|from|at|of|with|por|par|von|da|pela|pelo|от|компанией|командой)|\u7531)$",
                          before))


def _claimed(sent: str, start: int, end: int, anchors, aliases, *, allow_negation: bool = False) -> bool:
    before = [a for a in anchors if a[1] <= start]
    if not before:
        return False
    a_end = before[-1][1]
    return _span_ok(_masked(sent, a_end, start, aliases), appositive_tail=sent[end:], allow_negation=allow_negation)


def _claimed_as(sent: str, start: int, end: int, aliases) -> bool:
    """"As <identity phrase with the alias>, I ...": the alias must sit in that phrase."""
    for m in _AS_ANCHOR.finditer(sent):
        if m.end() > start:
            break
        tail = _AS_TAIL.search(sent, end)
        if not tail:
            continue
        phrase_end = tail.start()
        if not (_span_ok(_masked(sent, m.end(), start, aliases), appositive_tail=None)
                and _identity_words(_masked(sent, end, phrase_end, aliases)) is not None):
            continue
        return True
    return False


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
