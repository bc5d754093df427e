"""Self-identification: which makers a response claims to come from, in the first person.

A student distilled from a teacher's answers often keeps the teacher's self-description
("I am ChatGPT, a model trained by OpenAI") unless someone scrubbed it. The feature of a
response is the sorted list of maker keys (from ``provenance/data/lexicon.yaml``) it claims.

A claim is an alias of a maker tied to a first-person anchor by identity words only:

    I am / I'm / I was / my name is / my creators are / call me / you are talking to / this is
        + words such as "an AI assistant", "a language model", "developed by", "the team at"
        + the alias ("Atlas", "OpenAI", "GPT-4")

and the clause-opening "As <identity words + alias>, I ..." form ("As an AI language model
developed by OpenAI, I ..."). Anything else between anchor and alias breaks the tie: a
negation ("I am not GPT-4", "I'm not affiliated with OpenAI"), a comparison ("unlike ChatGPT",
"similar to Claude"), or ordinary content ("I am happy to explain how Google ranks pages").
Text inside quotation marks of four or more words, fenced code, speaker-labelled dialogue lines
("User: ...", "ChatGPT: ...") and paragraphs from a role-play cue on ("pretend", "imagine",
"if I were") are ignored, because the model is not speaking as itself there.

The rule is deliberately conservative: a missed claim costs a little power; a false claim
would invent evidence. Two responses match when their claim sets share a maker; a response
that claims nothing matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ..errors import ScoringError
from .base import Scorer

LEXICON_FILE = Path(__file__).resolve().parents[1] / "data" / "lexicon.yaml"

# --- anchors: where a first-person statement about the speaker's identity starts -----------

_ANCHORS = re.compile(
    r"\bI(?:\s+am|['\u2019]m|m)\b"
    r"|\bI\s+was\b"
    r"|\bI\s+(?:have|['\u2019]ve)\s+been\b"
    r"|\bI\s+(?:come|came)\s+from\b"
    r"|\bI\s+belong\s+to\b"
    r"|\bmy\s+(?:name|creators?|developers?|makers?|parent\s+company|company|team|trainers?|authors?"
    r"|builders?|designers?|engineers?|origins?)\b"
    r"|\bcall\s+me\b"
    r"|\byou(?:\s+are|['\u2019]re)\s+(?:talking|chatting|speaking)\s+(?:to|with)\b"
    r"|\bthis\s+is\b",
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
_TOKEN = re.compile(r"ALIAS|['\u2019]s\b|[A-Za-z]+(?:[-'\u2019][A-Za-z]+)*|\d+(?:\.\d+)?|\S")
_PUNCT_OK = frozenset(",()-\u2013\u2014:")
#: after an appositive alias, a verb means the alias is a new subject ("..., Google is a company")
_VERB_AFTER = re.compile(r"\s*(?:is|are|was|were|has|have|had|does|did|can|could|will|would|should|may|might|"
                         r"must|says|said|makes|made|offers|uses|provides)\b", re.IGNORECASE)

# --- text that is not the model speaking as itself -----------------------------------------

_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_QUOTE = re.compile(r"[\"\u201c]([^\"\u201c\u201d]*)[\"\u201d]")
_SPEAKER = re.compile(
    r"^\s*[*_]*(?:user|human|assistant|ai|bot|system|q|a|me|you|customer|agent|narrator|interviewer"
    r"|character|speaker|person)(?:\s*\w)?[*_]*\s*:", re.IGNORECASE)
_ROLEPLAY = re.compile(r"\b(?:pretend\w*|role[- ]?play\w*|imagin\w+|if I were|in character|playing the (?:role|part)"
                       r"|hypothetical\w*|suppose)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])(?<!\b[A-Za-z]\.)\s+|\n")
_ACRONYM_AI = re.compile(r"\bA\.I\.?(?=\W|$)")


@dataclass(frozen=True)
class Claim:
    """One first-person claim: the maker key, the alias as written, its offsets in the cleaned text."""

    maker: str
    alias: str
    start: int
    end: int


class Lexicon:
    """Makers and their aliases, compiled into one regex (longest alias first)."""

    def __init__(self, path: Path | str = LEXICON_FILE):
        self.path = Path(path)
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScoringError(f"{self.path}: lexicon file not found; restore it from git") from None
        except yaml.YAMLError as e:
            raise ScoringError(f"{self.path}: not valid YAML ({_one_line(e)}); fix the syntax") from None
        makers = (data or {}).get("makers") if isinstance(data, dict) else None
        if not isinstance(makers, dict) or not makers:
            raise ScoringError(f"{self.path}: needs a 'makers' mapping of maker key -> entry; see its header")
        self.display: dict[str, str] = {}
        self.persona: dict[str, str] = {}
        alts: list[tuple[int, str, str]] = []  # (sort length, regex, maker)
        for key, entry in makers.items():
            key = str(key)
            if not isinstance(entry, dict):
                raise ScoringError(f"{self.path}: makers.{key} must be a mapping with names/cased/patterns")
            self.display[key] = str(entry.get("display") or key)
            if entry.get("persona"):
                self.persona[str(entry["persona"])] = key
            for field, cased in (("names", False), ("cased", True)):
                names = entry.get(field) or []
                if not isinstance(names, list):
                    raise ScoringError(f"{self.path}: makers.{key}.{field} must be a list of strings")
                for name in names:
                    rx = re.escape(str(name)).replace(r"\ ", r"\s+")
                    alts.append((len(str(name)), rx if cased else f"(?i:{rx})", key))
            for i, pat in enumerate(entry.get("patterns") or []):
                try:
                    compiled = re.compile(pat, re.IGNORECASE)
                except (re.error, TypeError) as e:
                    raise ScoringError(f"{self.path}: makers.{key}.patterns[{i}] is not a valid regex "
                                       f"({e}); fix or remove it") from None
                if compiled.groups:
                    raise ScoringError(f"{self.path}: makers.{key}.patterns[{i}] has a capturing group; "
                                       f"write (?:...) instead of (...)")
                alts.append((len(pat), f"(?i:{pat})", key))
            if not any(entry.get(f) for f in ("names", "cased", "patterns")):
                raise ScoringError(f"{self.path}: makers.{key} has no names, cased names or patterns; add one")
        alts.sort(key=lambda a: -a[0])
        self._makers = [m for _, _, m in alts]
        self.regex = re.compile(r"(?<!\w)(?=\w)(?:" + "|".join(f"({rx})" for _, rx, _ in alts) + r")(?!\w)")

    def find(self, text: str):
        """(start, end, maker) of every alias in ``text``."""
        for m in self.regex.finditer(text):
            yield m.start(), m.end(), self._makers[m.lastindex - 1]


class SelfIdScorer(Scorer):
    """Makers a response claims in the first person (see the module docstring)."""

    name: ClassVar[str] = "self_id"

    def __init__(self, lexicon_path: Path | str = LEXICON_FILE):
        self.lexicon_path = Path(lexicon_path)

    @cached_property
    def lexicon(self) -> Lexicon:
        return Lexicon(self.lexicon_path)

    def claims(self, text: str) -> list[Claim]:
        """Every first-person claim in ``text``, in order (offsets refer to :func:`clean`)."""
        lex = self.lexicon
        out: list[Claim] = []
        for sent, offset in _speaking_sentences(clean(text or ""), lex.regex):
            anchors = [(m.start(), m.end()) for m in _ANCHORS.finditer(sent)]
            if not anchors and not _AS_ANCHOR.search(sent):
                continue  # no first person, no claim: skip the costly alias search
            aliases = list(lex.find(sent))
            if not aliases:
                continue
            for start, end, maker in aliases:
                if _claimed(sent, start, end, anchors, aliases) or _claimed_as(sent, start, end, aliases):
                    out.append(Claim(maker, sent[start:end], offset + start, offset + end))
        return out

    def features(self, text: str, prompt: Any = None) -> list[str]:
        return sorted({c.maker for c in self.claims(text)})

    def pair(self, a: list[str], b: list[str]) -> float:
        return 1.0 if set(a) & set(b) else 0.0

    def describe(self, feature: list[str]) -> str:
        if not feature:
            return "no claim"
        return "claims " + ", ".join(self.lexicon.display.get(k, k) for k in feature)


# --- helpers --------------------------------------------------------------------------------

def clean(text: str) -> str:
    """``text`` without fenced code and long quotations; short quoted names are unquoted."""
    text = _FENCE.sub(" ", text)
    text = _ACRONYM_AI.sub("AI", text)

    def unquote(m: re.Match) -> str:
        inner = m.group(1)
        return inner if len(inner.split()) < 4 else " [quote] "

    return _QUOTE.sub(unquote, text)


def _speaking_sentences(text: str, alias_rx: re.Pattern):
    """(sentence, offset) of the sentences where the model speaks as itself: not in lines
    labelled with a speaker ("User:", "ChatGPT:"), not from a role-play cue to the end of its
    paragraph."""
    pos = 0
    for para in re.split(r"(\n\s*\n)", text):
        start = pos
        pos += len(para)
        if not para.strip() or para.startswith("\n"):
            continue
        roleplay = False
        for line_m in re.finditer(r"[^\n]+", para):
            line = line_m.group(0)
            if _SPEAKER.match(line) or _labelled_by_alias(line, alias_rx):
                continue
            i = 0
            for piece in _SENTENCE.split(line):
                j = line.index(piece, i) if piece else i
                i = j + len(piece)
                if roleplay or _ROLEPLAY.search(piece):
                    roleplay = True
                    continue
                if piece.strip():
                    yield piece, start + line_m.start() + j


def _identity_words(span: str) -> list[str] | None:
    """The words of ``span`` if all are identity words, aliases (ALIAS) or harmless
    punctuation; None as soon as one is not (a negation, a comparison, any content)."""
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
        else:
            return None
    return words


def _labelled_by_alias(line: str, alias_rx: re.Pattern) -> bool:
    m = re.match(r"\s*[*_]*", line)
    a = alias_rx.match(line, m.end())
    return bool(a) and re.match(r"[*_]*\s*:", line[a.end():]) is not None


def _span_ok(span: str, *, appositive_tail: str | None) -> bool:
    """Whether the words between an anchor and an alias (other aliases as ALIAS) tie them."""
    words = _identity_words(span)
    if words is None:
        return False
    content = [w for w in words if w not in _EMPTY and w != "alias"]
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


def _claimed(sent: str, start: int, end: int, anchors, aliases) -> bool:
    before = [a for a in anchors if a[1] <= start]
    if not before:
        return False
    a_end = before[-1][1]
    return _span_ok(_masked(sent, a_end, start, aliases), appositive_tail=sent[end:])


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
