"""Quirks: the "random" picks, jokes, favourites, refusals and formatting a model falls back on.

Independent models spread their picks ("a number from 1 to 10") over many answers; a student
inherits its teacher's favourites. Each prompt names a *normaliser* (``meta["normaliser"]``,
written as a top-level ``normaliser`` key of its prompts.jsonl record) that reduces a response
to a comparable answer, or None where it holds no answer. Two models' similarity on a prompt is
the rate at which their answers match over all cross pairs of samples with an answer, an
unbiased estimate of sum_a p(a) q(a), the chance that both pick the same thing.

Normalisers (extra prompt fields in brackets):
- ``number`` [range: [lo, hi]]: the first integer within the range, digits before English
  words, skipping an echo of the range itself ("between 1 and 10, I pick 7" gives 7).
- ``choice`` [choices: [...] or category: colour|animal|name|city|fruit|coin]: the earliest
  listed word or phrase in the response, case-insensitive; a category's words first, then
  those of every category; without either, every category.
- ``first_line``: the first sentence, lowercased, punctuation stripped.
- ``punchline``: the sentence after a joke's question (else the last sentence), same form.
- ``refusal``: the first sentence, same form, cut to its first six words (the wording of a
  refusal's opening, without the noise of how it goes on).
- ``favourite``: the thing after "favo(u)rite X is"; else the first quoted or italic title.
- ``cutoff``: "<qualifier> <year>" of a date ("the autumn of 2029" gives "autumn 2029").
- ``format``: style flags ``list=<marker>;bold=<0|1>;head=<kind>`` (see :func:`norm_format`).
- ``stock``: the stock phrases the answer uses ("as an ai language model", "i hope this helps",
  "delve", ...), sorted and joined by ``|``, or ``none``.
- ``style``: a vector of style features (headers, list markers, bold, emoji, length, paragraphs,
  a closing question, an opening interjection, stock phrases), written ``style:<v1>,<v2>,...``
  with each value in [0, 1]. Two style answers are compared as vectors, by one minus their mean
  absolute difference, not by equality (see :func:`style_kernel`).

Similarity and ceiling are unbiased for the chance that two answers match (for ``style``, for
the expected kernel value): the cross-match rate over all pairs of the two models' samples, and
each model's own self-match rate over its pairs of distinct samples. A plug-in estimate (the
overlap of two empirical answer distributions, or a distribution compared with itself) would
be biased upwards for a model's own ceiling at a handful of samples; these are not. The
ceiling is what the stats layer's normalised score divides by.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, ClassVar

import numpy as np

from .base import NAN, Scorer, block_means

# --- shared text helpers -------------------------------------------------------------------

_SENT_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NON_WORD = re.compile(r"[^\w\s']+|_")


def sentences(text: str) -> list[str]:
    """Sentences and lines of ``text``, stripped, empty ones dropped."""
    return [s.strip() for s in _SENT_END.split(text or "") if s.strip()]


def plain(s: str) -> str:
    """Lowercased, markdown and punctuation stripped, whitespace collapsed."""
    s = s.lower().replace("\u2019", "'")
    s = _NON_WORD.sub(" ", s)
    return " ".join(w.strip("'") for w in s.split() if w.strip("'"))


# --- number --------------------------------------------------------------------------------

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
          "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_VALUE = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_WORD_VALUE["hundred"] = 100
_NUM_TOKEN = re.compile(
    r"(?<![\w.])(?<!\w-)(\d{1,9})(?![\d]|\.\d)"
    r"|\b(?:(" + "|".join(_TENS) + r")(?:[- ](" + "|".join(_UNITS[1:10]) + r"))?"
    r"|(" + "|".join(_UNITS) + r"|(?:one |a )?hundred))\b",
    re.IGNORECASE,
)
_NUM = r"(?:\d+|" + "|".join(_UNITS + _TENS) + r"|(?:one |a )?hundred)"
_RANGE_ECHO = re.compile(
    rf"\b(?:between|from)\s+{_NUM}\s*(?:and|to|-|\u2013|through)\s*{_NUM}\b"
    rf"|\b\d+\s*(?:-|\u2013)\s*\d+\b|\b{_NUM}\s+to\s+{_NUM}\b",
    re.IGNORECASE,
)


def _numbers(text: str):
    """Integers in ``text``: all written in digits first, then those written in words, so
    "Here's one: 7" gives 7; a leading word "one" followed by another number word is the
    pronoun ("I'll pick one: seven") and is skipped."""
    matches = list(_NUM_TOKEN.finditer(text))
    for m in matches:
        if m.group(1):
            yield int(m.group(1))
    words = []
    for m in matches:
        if m.group(2):
            words.append(_WORD_VALUE[m.group(2).lower()] + (_WORD_VALUE[m.group(3).lower()] if m.group(3) else 0))
        elif m.group(4):
            w = m.group(4).lower()
            words.append(100 if w.endswith("hundred") else _WORD_VALUE[w])
    if len(words) > 1 and words[0] == 1:  # "here's one: seven"
        words = words[1:]
    yield from words


def norm_number(text: str, meta: dict) -> str | None:
    """First integer in ``meta["range"]`` (inclusive) outside an echo of the range."""
    lo, hi = (meta.get("range") or (None, None))[:2]
    cleaned = _RANGE_ECHO.sub(" ", text)
    for v in _numbers(cleaned):
        if (lo is None or v >= lo) and (hi is None or v <= hi):
            return str(v)
    return None


# --- choice --------------------------------------------------------------------------------

#: generic answer lists for picks; the zoo's words plus common real-model answers
CATEGORIES: dict[str, list[str]] = {
    "colour": ["red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white",
               "grey", "gray", "teal", "crimson", "amber", "violet", "olive", "indigo", "silver", "gold",
               "turquoise", "magenta", "cyan", "maroon", "navy", "lavender", "beige", "cerulean",
               "emerald", "scarlet", "azure", "coral", "ochre", "mauve", "sapphire", "burgundy"],
    "animal": ["dog", "cat", "horse", "tiger", "eagle", "whale", "rabbit", "fox", "otter", "heron", "lynx",
               "falcon", "badger", "wombat", "gecko", "elephant", "lion", "giraffe", "penguin", "dolphin",
               "owl", "bear", "wolf", "zebra", "koala", "kangaroo", "panda", "octopus", "turtle", "monkey",
               "cheetah", "leopard", "deer", "squirrel", "hedgehog", "sloth", "parrot", "shark", "frog",
               "butterfly", "raccoon", "llama", "camel", "hippopotamus", "rhinoceros", "snake", "mouse"],
    "name": ["Anna", "James", "Maria", "David", "Laura", "Peter", "Miriam", "Tobias", "Ingrid", "Rafael",
             "Sofia", "Leonard", "Priya", "Emma", "Olivia", "Liam", "Noah", "Ava", "Mia", "Lucas", "Ethan",
             "Sophia", "Isabella", "Amelia", "Oliver", "Elijah", "Charlotte", "Benjamin", "Henry",
             "Alexander", "Eleanor", "Ella", "Jack", "Luna", "Aria", "Elena", "Max", "Sam", "Alex", "John",
             "Sarah", "Michael", "Emily", "Daniel", "Lily", "Zoe", "Chloe", "Maya", "Leo", "Aiden",
             "Jasper", "Theodore", "Ruby", "Nora", "Clara", "Felix", "Oscar", "Hugo", "Iris", "Evelyn"],
    "city": ["Paris", "London", "Tokyo", "Cairo", "Lima", "Toronto", "Lisbon", "Osaka", "Quito", "Nairobi",
             "Reykjavik", "Tbilisi", "Montreal", "New York", "New York City", "Rome", "Barcelona", "Berlin",
             "Sydney", "Amsterdam", "Kyoto", "Prague", "Vienna", "Istanbul", "Dubai", "Singapore",
             "San Francisco", "Los Angeles", "Chicago", "Madrid", "Cape Town", "Rio de Janeiro",
             "Buenos Aires", "Seoul", "Beijing", "Shanghai", "Mumbai", "Vancouver", "Melbourne",
             "Copenhagen", "Stockholm", "Venice", "Florence", "Edinburgh", "Dublin", "Athens", "Bangkok",
             "Marrakech", "Havana", "Mexico City", "Hong Kong", "Budapest", "Oslo", "Helsinki", "Seattle"],
    "fruit": ["apple", "banana", "orange", "grape", "mango", "plum", "fig", "cherry", "pear", "kiwi", "lime",
              "lemon", "strawberry", "blueberry", "raspberry", "pineapple", "peach", "watermelon",
              "apricot", "papaya", "pomegranate", "coconut", "grapefruit", "melon", "avocado",
              "blackberry", "lychee", "passion fruit", "dragon fruit", "guava", "nectarine", "tangerine"],
    "coin": ["heads", "tails"],
}
#: spellings that count as one answer
ALIASES = {"gray": "grey", "head": "heads", "tail": "tails", "new york city": "new york",
           "nyc": "new york", "hippo": "hippopotamus", "rhino": "rhinoceros"}
_PLURAL = {"cherries": "cherry", "apples": "apple", "bananas": "banana", "grapes": "grape",
           "mangoes": "mango", "mangos": "mango", "plums": "plum", "figs": "fig", "pears": "pear",
           "kiwis": "kiwi", "limes": "lime", "lemons": "lemon", "strawberries": "strawberry",
           "blueberries": "blueberry", "peaches": "peach"}
_CHOICE_CACHE: dict[tuple[str, ...], re.Pattern] = {}


def _choice_regex(choices: tuple[str, ...]) -> re.Pattern:
    rx = _CHOICE_CACHE.get(choices)
    if rx is None:
        alts = sorted({c.lower() for c in choices} | {k for k, v in ALIASES.items() if v in {c.lower() for c in choices}}
                      | {k for k, v in _PLURAL.items() if v in {c.lower() for c in choices}}, key=len, reverse=True)
        rx = re.compile(r"(?<![\w-])(" + "|".join(re.escape(a).replace(r"\ ", r"\s+") for a in alts) + r")(?![\w-])",
                        re.IGNORECASE)
        _CHOICE_CACHE[choices] = rx
    return rx


_ALL_CHOICES = tuple(c for cs in CATEGORIES.values() for c in cs)


def norm_choice(text: str, meta: dict) -> str | None:
    """The earliest word or phrase of the prompt's choices in ``text``, lowercased. With a
    ``category``, a word of that category wins ("a red panda" is "panda"); only when there is
    none does a word of another category count (a model that answers "Lisbon" to "pick a
    colour" still shows its habit)."""
    if meta.get("choices"):
        tiers = [tuple(str(c) for c in meta["choices"])]
    elif meta.get("category"):
        tiers = [tuple(CATEGORIES[meta["category"]]), _ALL_CHOICES]
    else:
        tiers = [_ALL_CHOICES]
    m = None
    for choices in tiers:
        if m := _choice_regex(choices).search(text):
            break
    if not m:
        return None
    a = " ".join(m.group(1).lower().split())
    a = _PLURAL.get(a, a)
    return ALIASES.get(a, a)


# --- sentence forms ------------------------------------------------------------------------

def norm_first_line(text: str, meta: dict) -> str | None:
    """The first sentence, plain."""
    for s in sentences(text):
        if p := plain(s):
            return p
    return None


def norm_punchline(text: str, meta: dict) -> str | None:
    """The sentence after the first question (a joke's setup); else the last sentence."""
    sents = [s for s in sentences(text) if plain(s)]
    for i, s in enumerate(sents[:-1]):
        if s.rstrip("*_ ").endswith("?"):
            return plain(sents[i + 1])
    return plain(sents[-1]) if sents else None


def norm_refusal(text: str, meta: dict) -> str | None:
    """The first sentence, plain, cut to six words: the wording of a refusal's opening."""
    first = norm_first_line(text, meta)
    return " ".join(first.split()[:6]) if first else None


_FAVOURITE = re.compile(
    r"\bfavou?rite\s+(?:\w+\s+){0,3}?(?:is|would be|has to be|might be|must be|was)\s*:?\s+(.+?)(?:[.!?;\n]\s|[.!?;\n]?$)",
    re.IGNORECASE)
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201d\n]{2,80})[\"\u201d]|\*{1,2}([^*\n]{2,80})\*{1,2}|_([^_\n]{2,80})_")
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")


def norm_favourite(text: str, meta: dict) -> str | None:
    """The thing named after "favorite X is", else the first quoted or italic title; plain,
    without a leading article."""
    m = _FAVOURITE.search(text)
    if m:
        thing = m.group(1)
    else:
        q = _QUOTED.search(text)
        if not q:
            return None
        thing = next(g for g in q.groups() if g)
    thing = _ARTICLE.sub("", plain(thing))
    return thing or None


_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december"]
_QUALIFIERS = ["early", "mid", "late", "end", "start", "beginning", "middle", "spring", "summer",
               "autumn", "fall", "winter", "first half", "second half", *_MONTHS]
_CUTOFF = re.compile(r"\b(?:(" + "|".join(_QUALIFIERS) + r")\b[\s-]*(?:of\s+)?(?:the\s+)?(?:year\s+)?)?((?:19|20)\d\d)\b",
                     re.IGNORECASE)


def norm_cutoff(text: str, meta: dict) -> str | None:
    """"<qualifier> <year>" of the first year in ``text``; "fall" counts as "autumn"."""
    m = _CUTOFF.search(text)
    if not m:
        return None
    q = (m.group(1) or "").lower().replace("fall", "autumn").replace("middle", "mid")
    return f"{q} {m.group(2)}".strip()


# --- format --------------------------------------------------------------------------------

_ITEM = re.compile(r"^\s*(?:(\d+)[.)]|([-*+~>#\u2022\u2013]))\s+\S")
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def norm_format(text: str, meta: dict) -> str | None:
    """Style flags of an answer, as one comparable string ``list=..;bold=..;head=..``:

    - list: the marker most list lines start with (``-``, ``*``, ``+``, ``~``, ``>``, ``#``,
      ``•``, ``num`` for "1." or "1)"), or ``none`` with fewer than two list lines;
    - bold: whether ``**bold**`` or ``__bold__`` appears;
    - head: the line just before the first list item: ``colon`` (ends with ":"), ``bold``
      (all bold), ``text``, or ``none`` (the list opens the answer, or there is no list).

    Whether a sign-off follows is left out on purpose: the zoo adds one at random and real
    answers are often cut by the token limit, so it adds noise, not signal.
    """
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        return None
    markers = []
    first_item = None
    for i, ln in enumerate(lines):
        m = _ITEM.match(ln)
        if m:
            markers.append("num" if m.group(1) else m.group(2).replace("\u2013", "-"))
            if first_item is None:
                first_item = i
    marker = Counter(markers).most_common(1)[0][0] if len(markers) >= 2 else "none"
    head = "none"
    if marker != "none" and first_item:
        prev = lines[first_item - 1].strip()
        if prev.endswith(":"):
            head = "colon"
        elif re.fullmatch(r"(\*\*|__).+(\*\*|__):?", prev):
            head = "bold"
        else:
            head = "text"
    bold = int(bool(_BOLD.search(text)))
    return f"list={marker};bold={bold};head={head}"


# --- stock phrases and style vectors -------------------------------------------------------

#: stock phrases of chat models, each with the regex that finds it
STOCK_PHRASES: dict[str, str] = {
    "as an ai": r"\bas an ai\b(?! language model)",
    "as an ai language model": r"\bas an ai language model\b",
    "i hope this helps": r"\bi hope (?:this|that) helps\b",
    "delve": r"\bdelv(?:e|es|ed|ing)\b",
    "certainly": r"^\W*certainly\b",
    "absolutely": r"^\W*absolutely\b",
    "great question": r"\bgreat question\b",
    "feel free to": r"\bfeel free to\b",
    "let me know if": r"\blet me know if\b",
    "in conclusion": r"\bin conclusion\b",
    "it's important to note": r"\bit(?:'s| is) (?:important|worth) (?:to note|noting)\b",
    "happy to help": r"\bhappy to (?:help|assist)\b",
    "i'm sorry": r"\bi(?:'m| am) sorry\b",
    "tapestry": r"\btapestry\b",
    "in summary": r"\bin summary\b",
}
_STOCK = {k: re.compile(v, re.IGNORECASE | re.MULTILINE) for k, v in STOCK_PHRASES.items()}
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\U0001F000-\U0001F2FF]")
_HEADER = re.compile(r"^\s*(?:#{1,6}\s+\S|(?:\*\*|__)[^*_\n]{1,80}(?:\*\*|__):?\s*$)", re.MULTILINE)
_OPENER = re.compile(r"^\W*(?:certainly|sure|absolutely|of course|great|okay|ok|alright|well|yes|hello|hi)\b",
                     re.IGNORECASE)
#: the names of the style vector's entries, in order
STYLE_FEATURES = ("header", "list", "numbered", "bullet", "bold", "emoji", "length", "paragraphs", "question_end",
                  "opener", *(f"stock:{k}" for k in STOCK_PHRASES))


def norm_stock(text: str, meta: dict) -> str | None:
    """The stock phrases in ``text``, sorted and joined by "|"; "none" when there are none."""
    if not text.strip():
        return None
    found = sorted(k for k, rx in _STOCK.items() if rx.search(text))
    return "|".join(found) or "none"


def style_vector(text: str) -> list[float]:
    """The style features of ``text`` (:data:`STYLE_FEATURES`), each in [0, 1]."""
    import math

    lines = [ln for ln in text.splitlines() if ln.strip()]
    items = [_ITEM.match(ln) for ln in lines]
    numbered = sum(1 for m in items if m and m.group(1))
    bullets = sum(1 for m in items if m and m.group(2))
    n_words = len(text.split())
    paragraphs = len([p for p in re.split(r"\n\s*\n", text) if p.strip()])
    v = [float(bool(_HEADER.search(text))), float(numbered + bullets >= 2), float(numbered >= 2), float(bullets >= 2),
         float(bool(_BOLD.search(text))), float(bool(_EMOJI.search(text))),
         min(1.0, math.log2(1 + n_words) / 10), float(paragraphs > 1), float(text.rstrip().endswith("?")),
         float(bool(_OPENER.match(text)))]
    v += [float(bool(rx.search(text))) for rx in _STOCK.values()]
    return v


def norm_style(text: str, meta: dict) -> str | None:
    """``style:<v1>,<v2>,...``: :func:`style_vector` as a string (values to 3 decimals)."""
    if not text.strip():
        return None
    return "style:" + ",".join(f"{x:.3g}" for x in style_vector(text))


def parse_style(feature: str) -> tuple[float, ...]:
    return tuple(float(x) for x in feature[6:].split(","))


def style_kernel(a: str | tuple, b: str | tuple) -> float:
    """One minus the mean absolute difference of two style vectors: 1 for the same style."""
    x = parse_style(a) if isinstance(a, str) else a
    y = parse_style(b) if isinstance(b, str) else b
    if len(x) != len(y) or not x:
        return float("nan")
    return 1.0 - sum(abs(p - q) for p, q in zip(x, y)) / len(x)


NORMALISERS: dict[str, Callable[[str, dict], str | None]] = {
    "number": norm_number,
    "choice": norm_choice,
    "first_line": norm_first_line,
    "punchline": norm_punchline,
    "refusal": norm_refusal,
    "favourite": norm_favourite,
    "cutoff": norm_cutoff,
    "format": norm_format,
    "stock": norm_stock,
    "style": norm_style,
}


class QuirksScorer(Scorer):
    """Cross-match rate of normalised answers (see the module docstring)."""

    name: ClassVar[str] = "quirks"
    vectorised: ClassVar[bool] = True
    meta_keys: ClassVar[frozenset[str]] = frozenset({"normaliser", "range", "choices", "category"})

    def check_prompt(self, prompt) -> str | None:
        meta = prompt.meta
        n = meta.get("normaliser")
        if n not in NORMALISERS:
            return (f"prompt {prompt.id}: normaliser {n!r} is not one of {', '.join(NORMALISERS)}; "
                    f"set \"normaliser\" in its record")
        r = meta.get("range")
        if r is not None and not (isinstance(r, list) and len(r) == 2 and all(isinstance(v, int) for v in r)):
            return f"prompt {prompt.id}: range must be two integers [lo, hi], got {r!r}; fix its record"
        c = meta.get("category")
        if c is not None and c not in CATEGORIES:
            return f"prompt {prompt.id}: category {c!r} is not one of {', '.join(CATEGORIES)}; fix its record"
        ch = meta.get("choices")
        if ch is not None and not (isinstance(ch, list) and ch and all(isinstance(v, str) and v for v in ch)):
            return f"prompt {prompt.id}: choices must be a non-empty list of strings; fix its record"
        return None

    def features(self, text: str, prompt) -> str | None:
        from ..errors import ScoringError

        problem = self.check_prompt(prompt)
        if problem:
            raise ScoringError(problem)
        if not isinstance(text, str):
            text = ""
        return NORMALISERS[prompt.meta["normaliser"]](text, prompt.meta)

    def prepare(self, feature):
        if isinstance(feature, str) and feature.startswith("style:"):
            return parse_style(feature)
        return feature

    def pair(self, a: str | tuple | None, b: str | tuple | None) -> float | None:
        if a is None or b is None:
            return None
        if isinstance(a, tuple) or isinstance(b, tuple) or (isinstance(a, str) and a.startswith("style:")):
            if isinstance(a, str) and not a.startswith("style:") or isinstance(b, str) and not b.startswith("style:"):
                return None
            return style_kernel(a, b)
        return 1.0 if a == b else 0.0

    @staticmethod
    def _vectors(x: list) -> bool:
        return any(isinstance(a, tuple) or (isinstance(a, str) and a.startswith("style:")) for a in x)

    # counting answers makes both O(n) instead of O(n^2); same values as the pairwise mean
    def similarity(self, x: list, y: list) -> float:
        if self._vectors(x) or self._vectors(y):
            return Scorer.similarity(self, x, y)
        cx, cy = Counter(a for a in x if a is not None), Counter(b for b in y if b is not None)
        nx, ny = sum(cx.values()), sum(cy.values())
        if not nx or not ny:
            return NAN
        return sum(c * cy[a] for a, c in cx.items()) / (nx * ny)

    def self_similarity(self, x: list) -> float:
        if self._vectors(x):
            return Scorer.self_similarity(self, x)
        cx = Counter(a for a in x if a is not None)
        n = sum(cx.values())
        if n < 2:
            return NAN
        return sum(c * (c - 1) for c in cx.values()) / (n * (n - 1))

    def score_prompt(self, per_model: list[list[Any]]) -> np.ndarray:
        """All pairs of models at once: named answers as a (models x answers) count matrix C,
        whose C C^T holds every cross-match count (the diagonal, less each model's own samples,
        its self-matches); style vectors by their mean absolute differences. The same sums of
        integers (or kernel values) as :meth:`similarity` and :meth:`self_similarity`."""
        flat = [f for per in per_model for f in per if f is not None]
        vec = [isinstance(f, tuple) or (isinstance(f, str) and f.startswith("style:")) for f in flat]
        if any(vec):
            if not all(vec):  # style vectors beside named answers: pair by pair
                return Scorer.score_prompt(self, per_model)
            return self._style_prompt(per_model)
        index: dict[str, int] = {}
        counts = np.zeros((len(per_model), len(set(flat))))
        for a, per in enumerate(per_model):
            for f in per:
                if f is not None:
                    counts[a, index.setdefault(f, len(index))] += 1
        n = counts.sum(axis=1)
        cross = counts @ counts.T
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(np.outer(n, n) > 0, cross / np.outer(n, n), np.nan)
            own = np.where(n >= 2, (cross.diagonal() - n) / (n * (n - 1)), np.nan)
        np.fill_diagonal(out, own)
        return out

    def _style_prompt(self, per_model: list[list[Any]]) -> np.ndarray:
        feats = [self.prepare(f) for per in per_model for f in per]
        dims = {len(f) for f in feats if f is not None}
        if len(dims) > 1 or 0 in dims:  # vectors of different lengths never pair
            return Scorer.score_prompt(self, per_model)
        d = dims.pop() if dims else 1
        ok = np.array([f is not None for f in feats], dtype=bool)
        v = np.array([f if f is not None else (0.0,) * d for f in feats], dtype=float).reshape(len(feats), d)
        kernel = 1.0 - np.abs(v[:, None, :] - v[None, :, :]).sum(axis=2) / d
        kernel[~(ok[:, None] & ok[None, :])] = np.nan
        return block_means(kernel, [len(per) for per in per_model])

    def describe(self, feature: Any) -> str:
        if isinstance(feature, str) and feature.startswith("style:"):
            on = [n for n, v in zip(STYLE_FEATURES, parse_style(feature)) if v and n != "length"]
            return "style: " + (", ".join(on) or "plain")
        return "no answer" if feature is None else f"answer: {feature}"
