"""Time phrases in a question ("last quarter", "in the past 2 weeks", "since March", "in 2017") as date spans.

Every relative phrase is resolved against an as-of date, never against the clock directly, so the same
question over an old export (the Maven data ends in 2017) answers as it would have on that day. A span is
[start, end) in UTC; either bound may be open. Phrases that can point both ways ("in 2 weeks": the last two
weeks for "no contact in 2 weeks", the next two for "closing in 2 weeks") carry both readings and the parser
picks by the field they attach to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

Span = tuple[datetime | None, datetime | None]

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "thirty": 30, "ninety": 90,
}  # fmt: skip

_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
_ORD = r"(?:first|1st|second|2nd|third|3rd|fourth|4th|last|final)"
_MONTH = r"(?:january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
_AMBIGUOUS_MONTHS = {
    "may",
    "mar",
    "jun",
    "dec",
    "jan",
    "feb",
    "apr",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
}
_NUM = r"(?:\d+|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"
_UNIT = r"(?:day|week|month|quarter|year)s?"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
# A date or period named in the question; order matters (longest forms first).
_POINT = (
    rf"(?:\d{{4}}-\d{{2}}-\d{{2}}|{_MONTH}\s+{_DAY},?\s+{_YEAR}|{_DAY}\s+{_MONTH},?\s+{_YEAR}|{_MONTH}\s+{_YEAR}"
    rf"|q[1-4]\s+{_YEAR}|{_YEAR}\s+q[1-4]|h[12]\s+{_YEAR}|{_MONTH}\s+{_DAY}(?!\d)|q[1-4]|{_YEAR}|{_MONTH})"
)


@dataclass(frozen=True)
class TimeExpr:
    """One time phrase found in the question: where it is, and what it spans looking back / ahead."""

    start_char: int
    end_char: int
    phrase: str
    past: Span
    future: Span | None = None  # only for phrases that can point ahead ("in 2 weeks", "next month")
    relative: bool = True  # depends on the as-of date (False for "in 2017", "2017-03-01")
    ahead: bool = False  # the phrase itself points ahead ("next month"): prefer `future`

    def span_for(self, looking_ahead: bool) -> Span:
        if (looking_ahead or self.ahead) and self.future is not None:
            return self.future
        return self.past


def day_start(moment: datetime) -> datetime:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + (moment.month - 1) + months
    if not 1 <= index // 12 <= 9999:
        raise OverflowError("date value out of range")
    return moment.replace(year=index // 12, month=index % 12 + 1, day=1)


def _number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


# Computed window bounds are clamped here: "the last 5000000 days" reaches back to the earliest bound, a
# whole-history window, instead of overflowing the calendar.
EARLIEST = datetime(1800, 1, 1, tzinfo=UTC)
LATEST = datetime(2400, 1, 1, tzinfo=UTC)


def _unit_delta(start: datetime, unit: str, n: int) -> datetime:
    """`start` moved by n units (negative = back), clamped to [EARLIEST, LATEST]."""
    limit = 800 * 12  # months: more than the whole representable span
    n = max(-limit * 31, min(limit * 31, n))
    try:
        moved = _unit_delta_raw(start, unit, n)
    except (OverflowError, ValueError):
        return EARLIEST if n < 0 else LATEST
    return min(max(moved, EARLIEST), LATEST)


def shift(start: datetime, unit: str, n: int) -> datetime:
    """`start` moved by n days / weeks / months / quarters / years, clamped to the representable span."""
    return _unit_delta(start, unit, n)


def _unit_delta_raw(start: datetime, unit: str, n: int) -> datetime:
    """`start` moved by n units (negative = back); months, quarters and years move by calendar months."""
    unit = unit.rstrip("s")
    if unit == "day":
        return start + timedelta(days=n)
    if unit == "week":
        return start + timedelta(weeks=n)
    months = {"month": 1, "quarter": 3, "year": 12}[unit] * n
    day = start.day
    moved = add_months(start, months)
    # keep the day of month where it exists (Mar 31 - 1 month = Feb 28/29)
    for d in (day, 30, 29, 28):
        try:
            return moved.replace(day=d)
        except ValueError:
            continue
    return moved


def _period_start(today: datetime, unit: str) -> datetime:
    unit = unit.rstrip("s")
    if unit == "day":
        return today
    if unit == "week":
        return today - timedelta(days=today.weekday())
    if unit == "month":
        return today.replace(day=1)
    if unit == "quarter":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    return today.replace(month=1, day=1)


def _period(start: datetime, unit: str, n: int = 1) -> Span:
    return start, _unit_delta(start, unit, n)


def point_span(text: str, today: datetime) -> tuple[Span, bool] | None:
    """The period a date phrase names, and whether that depended on the as-of date (no year given).

    None when the words only look like a date ("9999-99-99", "feb 31"): they stay not understood."""
    try:
        return _point_span(text, today)
    except (ValueError, OverflowError):
        return None


def _point_span(text: str, today: datetime) -> tuple[Span, bool] | None:
    text = text.strip().replace(",", "")
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    if m:
        start = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
        return (start, start + timedelta(days=1)), False
    m = re.fullmatch(rf"({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+({_YEAR}))?", text) or re.fullmatch(
        rf"(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})(?:\s+({_YEAR}))?", text
    )
    if m:
        month_word, day = (m[1], m[2]) if not m[1].isdigit() else (m[2], m[1])
        month, day_n = MONTHS[month_word], int(day)
        year = int(m[3]) if m[3] else today.year
        start = datetime(year, month, day_n, tzinfo=UTC)
        if not m[3] and start > today:
            start = start.replace(year=year - 1)
        return (start, start + timedelta(days=1)), not m[3]
    m = re.fullmatch(rf"({_MONTH})(?:\s+({_YEAR}))?", text)
    if m:
        month = MONTHS[m[1]]
        if m[2]:
            start = datetime(int(m[2]), month, 1, tzinfo=UTC)
        else:
            year = today.year if month <= today.month else today.year - 1
            start = datetime(year, month, 1, tzinfo=UTC)
        return _period(start, "month"), not m[2]
    m = re.fullmatch(rf"q([1-4])(?:\s+({_YEAR}))?", text) or re.fullmatch(rf"({_YEAR})\s+q([1-4])", text)
    if m:
        if m.re.pattern.startswith("("):
            year, quarter = int(m[1]), int(m[2])
            explicit = True
        else:
            quarter, explicit = int(m[1]), bool(m[2])
            year = int(m[2]) if m[2] else today.year
        start = datetime(year, 3 * (quarter - 1) + 1, 1, tzinfo=UTC)
        if not explicit and start > today:
            start = start.replace(year=year - 1)
        return _period(start, "quarter"), not explicit
    m = re.fullmatch(rf"h([12])\s+({_YEAR})", text)
    if m:
        start = datetime(int(m[2]), 1 if m[1] == "1" else 7, 1, tzinfo=UTC)
        return _period(start, "month", 6), False
    m = re.fullmatch(_YEAR, text)
    if m:
        start = datetime(int(text), 1, 1, tzinfo=UTC)
        return _period(start, "year"), False
    return None


def _rules(today: datetime):
    """(regex, resolver) pairs; a resolver returns (past, future, relative, ahead) or None."""
    tomorrow = today + timedelta(days=1)

    def rolling_back(n: int, unit: str):
        return (_unit_delta(tomorrow, unit, -n), tomorrow)

    def rolling_ahead(n: int, unit: str):
        return (today, _unit_delta(tomorrow, unit, n))

    def between(m):
        a, b = point_span(m["a"], today), point_span(m["b"], today)
        if a is None or b is None:
            return None
        return (a[0][0], b[0][1]), None, a[1] or b[1], False

    def last_n(m):
        n = _number(m["n"]) if m["n"] else None
        unit = m["unit"]
        calendar = m["which"] in ("previous", "prior") or (
            m["which"] == "last" and (not m["the"] or unit.rstrip("s") in ("month", "quarter", "year"))
        )
        if n is None and calendar:
            start = _unit_delta(_period_start(today, unit), unit, -1)
            return _period(start, unit), None, True, False
        return rolling_back(n or 1, unit), None, True, False

    def this_period(m):
        start = _period_start(today, m["unit"])
        return _period(start, m["unit"]), None, True, False

    def to_date(m):
        unit = {"ytd": "year", "mtd": "month", "qtd": "quarter"}.get(m["unit"] or "", m["unit"] or "year")
        return (_period_start(today, unit), tomorrow), None, True, False

    def next_n(m):
        n = _number(m["n"]) if m["n"] else None
        unit = m["unit"]
        if n is None:
            start = _unit_delta(_period_start(today, unit), unit, 1)
            span = _period(start, unit)
        else:
            span = rolling_ahead(n, unit)
        return span, span, True, True

    def within(m):
        n = _number(m["n"])
        return rolling_back(n, m["unit"]), rolling_ahead(n, m["unit"]), True, False

    def ago(m):
        n = _number(m["n"])
        cmp = m["cmp"] or ""
        edge = _unit_delta(tomorrow, m["unit"], -n)
        if cmp in ("more than", "over", "at least"):
            return (None, edge), None, True, False
        if cmp in ("less than", "under", "within"):
            return (edge, tomorrow), None, True, False
        day = _unit_delta(today, m["unit"], -n)
        return (day, day + timedelta(days=1)), None, True, False

    def older(m):
        return (None, _unit_delta(tomorrow, m["unit"], -_number(m["n"]))), None, True, False

    def since(m):
        p = point_span(m["p"], today)
        return None if p is None else ((p[0][0], None), None, p[1], False)

    def since_rel(m):
        start = _unit_delta(_period_start(today, m["unit"]), m["unit"], -1)
        return (start, None), None, True, False

    def before(m):
        p = point_span(m["p"], today)
        return None if p is None else ((None, p[0][0]), None, p[1], False)

    def after(m):
        p = point_span(m["p"], today)
        return None if p is None else ((p[0][1], None), None, p[1], False)

    def during(m):
        # a bare "may" / "mar" is far more often a word than a month: only with a preposition before it
        if m["p"] in _AMBIGUOUS_MONTHS and not m.string[m.start() : m.start("p")].strip():
            return None
        p = point_span(m["p"], today)
        if p is None:
            return None
        # a month named without a year points back ("deals won in march") or, for a date ahead such as an
        # expected close, forward to its next occurrence ("closing in december" = the coming December)
        future = None
        bare = re.fullmatch(rf"({_MONTH})", m["p"].strip().replace(",", ""))
        if bare:
            month = MONTHS[bare[1]]
            year = today.year if month >= today.month else today.year + 1
            future = _period(datetime(year, month, 1, tzinfo=UTC), "month")
        return (p[0], future, p[1], False)

    def part_of_year(m):
        # "the last quarter of 2017" is 2017's fourth quarter, not the quarter before the as-of date
        year, unit = int(m["y"]), m["unit"]
        count = {"quarter": 4, "half": 2, "month": 12}[unit]
        n = _ORDINALS[m["ord"]] if m["ord"] not in ("last", "final") else count
        if n > count:
            return None
        months = 12 // count
        start = datetime(year, (n - 1) * months + 1, 1, tzinfo=UTC)
        return _period(start, "month", months), None, False, False

    def month_of_year(m):
        start = datetime(int(m["y"]), MONTHS[m["m"]], 1, tzinfo=UTC)
        return _period(start, "month"), None, False, False

    def quarter_of_year(m):
        start = datetime(int(m["y"]), 3 * (int(m["q"]) - 1) + 1, 1, tzinfo=UTC)
        return _period(start, "quarter"), None, False, False

    def bare_duration(m):
        # "no contact 2 weeks": a duration with no preposition reads like "in the last 2 weeks" (or the next
        # 2 weeks for a field that points ahead)
        n = _number(m["n"])
        return rolling_back(n, m["unit"]), rolling_ahead(n, m["unit"]), True, False

    def named_day(m):
        offset = {"today": 0, "yesterday": -1, "tomorrow": 1}[m["d"]]
        start = today + timedelta(days=offset)
        span = (start, start + timedelta(days=1))
        return span, span, True, offset > 0

    return [
        (
            rf"\b(?:in\s+|during\s+)?(?:the\s+)?(?P<ord>{_ORD})\s+(?P<unit>quarter|half|month)\s+(?:of|in)\s+(?P<y>{_YEAR})\b",
            part_of_year,
        ),
        (rf"\b(?:in\s+|during\s+)?q(?P<q>[1-4])\s+(?:of|in)\s+(?P<y>{_YEAR})\b", quarter_of_year),
        (rf"\b(?:in\s+|during\s+)?(?P<m>{_MONTH})\s+(?:of|in)\s+(?P<y>{_YEAR})\b", month_of_year),
        (rf"\b(?:between|from)\s+(?P<a>{_POINT})\s+(?:and|to|until|through)\s+(?P<b>{_POINT})\b", between),
        (r"\bsince\s+(?:the\s+)?(?:last|previous)\s+(?P<unit>week|month|quarter|year)\b", since_rel),
        (
            rf"\b(?P<cmp>more than|over|at least|less than|under|within)?\s*(?P<n>{_NUM})\s+(?P<unit>{_UNIT})\s+ago\b",
            ago,
        ),
        (rf"\bolder than\s+(?P<n>{_NUM})\s+(?P<unit>{_UNIT})\b", older),
        (
            rf"\b(?:in|during|over|within|for)?\s*(?P<the>the\s+)?(?P<which>last|past|previous|prior|recent)\s+(?P<n>{_NUM})?\s*(?P<unit>{_UNIT})\b",
            last_n,
        ),
        (
            r"\b(?:so far this\s+(?P<unit>year|month|quarter)|(?P<u2>year|month|quarter)[ -]to[ -]date)\b",
            lambda m: to_date({"unit": m["unit"] or m["u2"]}),
        ),
        (rf"\b(?:in|during|over)?\s*(?:this|the current|current)\s+(?P<unit>{_UNIT})\b", this_period),
        (r"\b(?P<unit>ytd|mtd|qtd)\b", to_date),
        (
            rf"\b(?:in|during|over|within)?\s*(?:the\s+)?(?:next|coming|upcoming|following)\s+(?P<n>{_NUM})?\s*(?P<unit>{_UNIT})\b",
            next_n,
        ),
        (rf"\b(?:in|within)\s+(?:the\s+)?(?P<n>\d+|{_NUM})\s+(?P<unit>{_UNIT})\b", within),
        (rf"\b(?:since|from|starting|as of)\s+(?P<p>{_POINT})\b", since),
        (rf"\b(?:before|prior to|until|till|earlier than)\s+(?P<p>{_POINT})\b", before),
        (rf"\b(?:after|later than)\s+(?P<p>{_POINT})\b", after),
        (rf"\b(?:in|during|on|for|of)?\s*(?P<p>{_POINT})\b", during),
        (r"\b(?P<d>today|yesterday|tomorrow)\b", named_day),
        (
            rf"\b(?:for\s+)?(?P<n>\d+|{_NUM})\s+(?P<unit>{_UNIT})\b(?!\s+(?:ago|old|before|after|from)\b)",
            bare_duration,
        ),
    ]


def find_times(text: str, as_of: datetime, blocked: list[tuple[int, int]] = ()) -> list[TimeExpr]:
    """Every time phrase in the (lower-cased) question, left to right, without overlaps.

    `blocked` are character spans already understood as something else (money, counts) that a time phrase
    may not overlap: "over 2000 dollars" is not the year 2000.
    """
    today = day_start(as_of)
    taken: list[tuple[int, int]] = list(blocked)
    found: list[TimeExpr] = []
    for pattern, resolve in _rules(today):
        for m in re.finditer(pattern, text):
            start, end = m.start(), m.end()
            # the optional leading preposition may match only whitespace: trim it off the span
            while start < end and text[start].isspace():
                start += 1
            if start == end or any(start < b and a < end for a, b in taken):
                continue
            if resolve is None:
                continue
            resolved = resolve(m)
            if resolved is None:
                continue
            past, future, relative, ahead = resolved
            taken.append((start, end))
            found.append(TimeExpr(start, end, text[start:end], past, future, relative, ahead))
    return sorted(found, key=lambda t: t.start_char)
