"""Generated perturbations of NL questions: how the same question is typed by someone else; prints nothing.

Six kinds, each applied alone and deterministically (seeded by the question): shorthand (qtr, yr, cos,
accts, opps, #, w/o, $5k), a typo (two adjacent letters of one longer word swapped, never inside a name or a
value), apostrophes dropped, lower case, a trailing time clause moved to the front, and a synonym (deals ->
opportunities, companies -> accounts, over -> more than). A kind that would not change the question yields
nothing, so every perturbation counted is a different string with the same gold answer.
"""

from __future__ import annotations

import hashlib
import re

SHORTHAND = [
    (r"\bquarter\b", "qtr"), (r"\byear\b", "yr"), (r"\bweeks\b", "wks"), (r"\bcompanies\b", "cos"),
    (r"\baccounts\b", "accts"), (r"\bopportunities\b", "opps"), (r"\bnumber of\b", "#"), (r"\bwithout\b", "w/o"),
    (r"\$(\d+),000\b", r"$\1k"), (r"\bhaven't\b", "havent"), (r"\bmonths\b", "mos"),
]  # fmt: skip
SYNONYMS = [
    (r"\bdeals\b", "opportunities"), (r"\bcompanies\b", "accounts"), (r"\baccounts\b", "companies"),
    (r"\bover(?= \$?\d)", "more than"), (r"\bcontacts\b", "people"), (r"\bbiggest\b", "largest"), (r"\blargest\b", "biggest"),
    (r"\bopportunities\b", "deals"), (r"\bhow many\b", "number of"),
]  # fmt: skip
_TIME_TAIL = re.compile(
    r"\s+((?:in |during |over |within )?(?:the )?(?:last|past|previous|this|next) (?:\d+ )?(?:days?|weeks?|months?|quarters?|years?)"
    r"|in (?:19|20)\d\d|in q[1-4](?: (?:19|20)\d\d)?|last quarter|this month|since \w+)$",
    re.IGNORECASE,
)


def _seed(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def _first(rules, question: str) -> str | None:
    for pattern, repl in rules:
        changed = re.sub(pattern, repl, question, count=1)
        if changed != question:
            return changed
    return None


def _typo(question: str, protected: list[str]) -> str | None:
    spans = [(m.start(), m.end()) for p in protected if p for m in re.finditer(re.escape(p), question)]
    words = [
        m for m in re.finditer(r"[A-Za-z]{6,}", question)
        if not any(a < m.end() and m.start() < b for a, b in spans) and not m.group()[0].isupper()
    ]  # fmt: skip
    if not words:
        return None
    word = words[_seed(question) % len(words)]
    w = word.group()
    i = 1 + _seed(w) % (len(w) - 3)  # never the first or last letter
    if w[i] == w[i + 1]:
        return None
    swapped = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    return question[: word.start()] + swapped + question[word.end() :]


def perturbations(question: str, protected: list[str] = ()) -> list[tuple[str, str]]:
    """(kind, perturbed question) for every kind that changes the question."""
    out = []
    candidates = {
        "shorthand": _first(SHORTHAND, question),
        "typo": _typo(question, list(protected)),
        "no_apostrophes": question.replace("'", "") if "'" in question else None,
        "lower_case": question.lower() if question.lower() != question else None,
        "reordered": None,
        "synonym": _first(SYNONYMS, question),
    }
    tail = _TIME_TAIL.search(question.rstrip("?"))
    if tail and tail.start() > 0:
        rest = question.rstrip("?")[: tail.start()]
        candidates["reordered"] = f"{tail.group(1)} {rest}"
    for kind, text in candidates.items():
        if text and text != question:
            out.append((kind, text))
    return out
