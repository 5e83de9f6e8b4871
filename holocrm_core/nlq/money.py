"""Amounts and counts in a question ("$100k", "over 5 thousand euros", "more than 500 employees") as numbers.

Money keeps its currency (an ISO code) because the warehouse keeps money as amount + currency: "over 5
thousand euros" compares EUR amounts only, there being no exchange rates in a CRM export to convert with.
The parser decides what a quantity refers to from the noun after it (employees, deals) or the words around it
(pipeline, revenue); this module only reads the number, the comparison and the unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

CURRENCY_WORDS = {
    "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD",
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP",
    "cad": "CAD", "aud": "AUD", "chf": "CHF", "francs": "CHF", "jpy": "JPY", "yen": "JPY",
    "inr": "INR", "rupees": "INR", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "sgd": "SGD",
}  # fmt: skip
MULTIPLIERS = {
    "k": 1_000, "thousand": 1_000, "grand": 1_000, "m": 1_000_000, "mm": 1_000_000, "mn": 1_000_000,
    "million": 1_000_000, "millions": 1_000_000, "b": 1_000_000_000, "bn": 1_000_000_000, "billion": 1_000_000_000,
}  # fmt: skip
COMPARATORS = {
    "over": "gt", "above": "gt", "more than": "gt", "greater than": "gt", "exceeding": "gt", "in excess of": "gt",
    "bigger than": "gt", "exceeds": "gt", "exceed": "gt", "tops": "gt", "upwards of": "gt", "larger than": "gt", "higher than": "gt", ">": "gt", "north of": "gt",
    "at least": "gte", "no less than": "gte", "minimum of": "gte", "min": "gte", ">=": "gte", "or more": "gte",
    "under": "lt", "below": "lt", "less than": "lt", "smaller than": "lt", "lower than": "lt", "fewer than": "lt",
    "<": "lt", "at most": "lte", "no more than": "lte", "up to": "lte", "maximum of": "lte", "max": "lte",
    "<=": "lte", "or less": "lte", "between": "between", "exactly": "eq", "equal to": "eq",
}  # fmt: skip
# Nouns that say what is being counted; anything else after a number is money (or nothing).
QUANTITY_NOUNS = (
    "employees", "employee", "staff", "people", "headcount", "workers",
    "open deals", "won deals", "lost deals", "open opportunities", "won opportunities", "lost opportunities",
    "open opps", "won opps", "lost opps", "deals", "deal", "opportunities", "opportunity", "opps",
    "contacts", "contact", "leads", "activities", "activity", "touches", "interactions",
    "emails", "calls", "meetings", "notes",
)  # fmt: skip
_TIME_UNITS = r"(?:days?|weeks?|months?|quarters?|years?|ago|hours?)\b"

_CMP = "|".join(
    re.escape(c)
    for c in sorted((c for c in COMPARATORS if c not in ("or more", "or less")), key=len, reverse=True)
)
_CUR_SYM = r"[$€£]"
_CUR_WORD = "|".join(sorted((re.escape(c) for c in CURRENCY_WORDS if c not in "$€£"), key=len, reverse=True))
_MULT = "|".join(sorted(MULTIPLIERS, key=len, reverse=True))
_NOUN = "|".join(re.escape(n) for n in QUANTITY_NOUNS)
_AMOUNT = (
    rf"(?P<{{p}}sym>{_CUR_SYM})?\s*(?P<{{p}}num>\d[\d,]*(?:\.\d+)?)(?![\d.,]*\d)\s*(?P<{{p}}mult>(?:{_MULT})\b)?"
    rf"(?P<{{p}}plus>\+)?(?P<{{p}}pct>\s*%|\s*percent\b)?\s*(?P<{{p}}cur>(?:{_CUR_WORD})\b)?"
)
_PATTERN = re.compile(
    rf"(?:(?P<cmp>{_CMP})\s*)?{_AMOUNT.format(p='a')}"
    rf"(?:\s*(?:and|to|-)\s*{_AMOUNT.format(p='b')})?"
    rf"(?:\s*(?P<tail>or more|or less|plus))?"
    rf"(?:\s*(?P<noun>{_NOUN})\b)?"
    rf"(?!\s*{_TIME_UNITS})"
)


@dataclass(frozen=True)
class Quantity:
    start_char: int
    end_char: int
    phrase: str
    op: str  # one of plan.OPERATORS (gt, gte, lt, lte, between, eq)
    amount: Decimal
    high: Decimal | None = None  # upper bound for "between"
    currency: str | None = None
    noun: str | None = None  # "employees", "deals", ... None = money or a bare number
    explicit_op: bool = True  # False when no comparison word was given ("$100k deals")
    percent: bool = False

    @property
    def is_money(self) -> bool:
        return self.noun is None


def _amount(m: re.Match, p: str) -> tuple[Decimal, str | None, bool] | None:
    num = m[f"{p}num"]
    if num is None:
        return None
    value = Decimal(num.replace(",", ""))
    mult = m[f"{p}mult"]
    if mult:
        value *= MULTIPLIERS[mult]
    sym = m[f"{p}sym"] or m[f"{p}cur"]
    currency = CURRENCY_WORDS.get(sym) if sym else None
    return value, currency, bool(mult or sym)


def find_quantities(text: str, blocked: list[tuple[int, int]] = ()) -> list[Quantity]:
    """Amounts with their comparison, unit and noun, left to right, skipping `blocked` character spans."""
    found: list[Quantity] = []
    for m in _PATTERN.finditer(text):
        start, end = m.start(), m.end()
        while end > start and text[end - 1].isspace():
            end -= 1
        if any(start < b and a < end for a, b in blocked):
            continue
        a = _amount(m, "a")
        if a is None:
            continue
        amount, currency, unit_given = a
        cmp_word = m["cmp"]
        noun = m["noun"]
        b = _amount(m, "b")
        op = COMPARATORS.get(cmp_word) if cmp_word else None
        if m["tail"] in ("or more", "plus") or m["aplus"]:
            op = "gte"
        elif m["tail"] == "or less":
            op = "lte"
        high = None
        if b is not None and (op in (None, "between") and (b[2] or unit_given or cmp_word == "between")):
            op, high = "between", b[0]
            currency = currency or b[1]
            unit_given = True
            if b[2] and m["bmult"] and not m["amult"]:
                amount *= MULTIPLIERS[m["bmult"]]  # "between 50 and 100k": both in thousands
        percent = bool(m["apct"])
        unit_given = unit_given or percent
        if not (unit_given or noun or op):
            continue  # a bare number ("2017", "10") is not a quantity
        if (
            not (unit_given or op)
            and 1900 <= amount <= 2100
            and re.search(r"\b(?:in|during|since|of|from|for|before|after)\s*$", text[:start])
        ):
            continue  # "in 2025 deals lost": a year, not "at least 2025 deals"
        if noun and b is not None and op != "between":
            continue
        if noun and currency:
            # "$100k+ deals": the noun is what the money is about, not what is counted
            end = m.start("noun")
            while end > start and text[end - 1].isspace():
                end -= 1
            noun = None
        found.append(
            Quantity(
                start_char=start,
                end_char=end,
                phrase=text[start:end],
                op=op or "gte",
                amount=amount,
                high=high,
                currency=currency,
                noun=noun,
                explicit_op=op is not None,
                percent=percent,
            )
        )
    return found
