"""Dates derived from a record rather than from the calendar: one phrase family, one small pass.

- "past their expected close date", "overdue": open deals whose expected close date is before the as-of day;
- "(sitting|stuck) in qualification for over a month": in the current stage for more than N days (the
  parser's stuck window on stage_changed_at, created_at when the stage never changed);
- "haven't changed stage since july", "no stage change since March": the stage date before the start of the
  time phrase.
Grouping by the quarter (month, year) of any date is a dimension with a grain in the semantic layer.
"""

from __future__ import annotations

import re

from holocrm_core.nlq.plan import FieldFilter, TimeWindow
from holocrm_core.nlq.timeparse import day_start

_PAST_CLOSE = re.compile(
    r"\b(?:(?:that\s+are\s+|which\s+are\s+)?(?:past|beyond|after|over|missed|overdue\s+on)\s+(?:their|its|the)?\s*"
    r"(?:expected\s+|planned\s+|target\s+)?clos(?:e|ing)\s+dates?|overdue|slipped"
    # "whose close date already passed", "where the expected close date is in the past"
    r"|(?:whose|where\s+the|with\s+an?|that\s+have\s+an?)\s+(?:expected\s+|planned\s+)?clos(?:e|ing)\s+dates?\s+"
    r"(?:has\s+|have\s+|is\s+|are\s+)?(?:already\s+)?(?:passed|gone\s+by|lapsed|expired|in\s+the\s+past|behind\s+us))\b"
)
_FOR_OVER = re.compile(
    r"\b(?:(?:sitting|sat|stuck|been|sitting\s+around|parked)\s+)?(?:in\s+(?:the\s+)?(?:same\s+)?(?:stage\s+)?)?"
    r"(?P<lead>for\s+(?:over|more\s+than|longer\s+than|at\s+least|upwards\s+of)\s+)"
    r"(?P<n>a|an|one|\d+)\s+(?P<unit>day|week|month|year)s?\b"
    # "in stage over 60 days", "in their current stage more than a month": the word stage says whose age
    r"|\bin\s+(?:the\s+|their\s+|its\s+)?(?:same\s+|current\s+)?stage\s+"
    r"(?P<lead2>(?:for\s+)?(?:over|more\s+than|longer\s+than|at\s+least)\s+)"
    r"(?P<n2>a|an|one|\d+)\s+(?P<unit2>day|week|month|year)s?\b"
)
_STAGE_SINCE = re.compile(
    r"\b(?:(?:have|has|had)\s+not\s+(?:changed|moved)(?:\s+(?:stage|stages))?|(?:with\s+)?no\s+stage\s+change|"
    r"(?:not|never)\s+(?:changed|moved)(?:\s+(?:stage|stages))?)\s+(?=since\b)"
)
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def record_dates(st, trace_entry) -> None:
    """Before the calendar's time phrases are read: expected-close and time-in-stage phrases."""
    for m in _PAST_CLOSE.finditer(st.text):
        if not st.claims.free(m.start(), m.end()):
            continue
        st.claims.take(m.start(), m.end())
        cutoff = day_start(st.as_of)
        st.filters.append(FieldFilter("deals", "expected_close_at", "lt", cutoff))
        st.implied_open = True
        st.target_hint = st.target_hint or "deals"
        st.trace.append(
            trace_entry(
                m.group(), f"open deals with deals.expected_close_at before {cutoff.date().isoformat()}"
            )
        )
    for m in _FOR_OVER.finditer(st.text):
        lead, count, unit = ("lead", "n", "unit") if m["lead"] else ("lead2", "n2", "unit2")
        if not st.claims.free(m.start(lead), m.end()):
            continue
        n = 1 if m[count] in ("a", "an", "one") else int(m[count])
        days = n * _UNIT_DAYS[m[unit]]
        st.claims.take(m.start(), m.end())
        st.stuck_days = days
        st.target_hint = st.target_hint or "deals"
        st.trace.append(trace_entry(m.group(), f"in the current stage for over {days} days"))


def stage_since(st, trace_entry) -> None:
    """After the time phrases are found: "haven't changed stage since <time>" dates the stage change."""
    for m in _STAGE_SINCE.finditer(st.text):
        if not st.claims.free(m.start(), m.end()):
            continue
        phrase = next((t for t in st.times if t.start_char >= m.end() and t.start_char - m.end() < 3), None)
        if phrase is None:
            continue
        start = phrase.past[0]
        if start is None:
            continue
        st.claims.take(m.start(), m.end())
        st.used_times.add(id(phrase))
        st.extra_windows.append(TimeWindow("deals", "stage_changed_at", None, start, phrase.phrase))
        st.target_hint = st.target_hint or "deals"
        st.trace.append(
            trace_entry(
                m.group() + phrase.phrase, f"deals.stage_changed_at before {start.date().isoformat()}"
            )
        )
