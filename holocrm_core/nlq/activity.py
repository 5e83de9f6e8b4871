"""Activity presence and absence, stuck deals, and which date a time phrase applies to."""

from __future__ import annotations

import re

from holocrm_core.nlq.lexicon import _ACT_ANY, _ACT_TYPED, _ACTIVITY_TYPE_WORDS, _DATE_VERBS
from holocrm_core.nlq.plan import ActivityCondition, FieldFilter, GroupFilter, TimeWindow
from holocrm_core.nlq.state import TraceEntry, _span, _State
from holocrm_core.nlq.timeparse import TimeExpr
from holocrm_core.nlq.vocabulary import tokens


class ActivityPasses:
    """Mixed into Parser: the passes this module's docstring names."""

    def _time_cues(self, st: _State) -> None:
        """The verb right before a time phrase says which field it dates ("engaged in December": created_at,
        "founded before 1990": a custom year column found by the meaning of its name). Claimed before the
        value pass so that "engaged" is not also read as a stage."""
        for t in st.times:
            m = re.search(
                r"\b(?P<cue>[a-z]+)\s+(?:(?:in|on|during|since|from|around)\s+)?$", st.text[: t.start_char]
            )
            if m is None or not st.claims.free(m.start("cue"), m.end("cue")):
                continue
            cue = m["cue"]
            column = self.vocab.column_for_meaning(cue)
            if column is not None:
                entity, col, is_year = column
                st.claims.take(m.start("cue"), m.end("cue"))
                st.used_times.add(id(t))
                start, end = t.past
                if is_year:
                    low = (
                        None
                        if start is None
                        else start.year + (0 if (start.month, start.day) == (1, 1) else 1)
                    )
                    high = None if end is None else end.year - (1 if (end.month, end.day) == (1, 1) else 0)
                    if low is not None and high is not None:
                        filt = FieldFilter(
                            entity,
                            col,
                            "between" if low != high else "eq",
                            [low, high] if low != high else low,
                        )
                    elif low is not None:
                        filt = FieldFilter(entity, col, "gte", low)
                    else:
                        filt = FieldFilter(entity, col, "lte", high)
                    st.filters.append(filt)
                    st.trace.append(TraceEntry(f"{cue} {t.phrase}", filt.words(), "meaning"))
                else:
                    st.extra_windows.append(TimeWindow(entity, col, start, end, t.phrase))
                    st.trace.append(
                        TraceEntry(f"{cue} {t.phrase}", f"{entity}.{col} {_span(start, end)}", "meaning")
                    )
                st.target_hint = st.target_hint or entity
                continue
            if cue in _DATE_VERBS:
                st.claims.take(m.start("cue"), m.end("cue"))
                st.time_cues[id(t)] = cue

    def _stuck(self, st: _State) -> None:
        """Duration in stage: "stuck in negotiation for over 60 days", "in prospecting for more than 90 days"."""
        m = re.search(
            r"\b(?P<kw>stuck|stalled|stalling|stale|idle|languishing|sitting|been)\b(?P<mid>(?:\s+(?!for\b)[a-z]+){0,3}?)"
            r"\s+(?:for\s+)?(?:over|more than|at least|longer than|>)\s*(?P<n>\d+)\s+(?P<u>days?|weeks?|months?)\b",
            st.text,
        )
        if m is None:
            m = re.search(
                r"\bin\s+(?P<mid>(?:the\s+)?[a-z]+(?:\s+[a-z]+)?)(?:\s+stage)?\s+for\s+(?:over|more than|at least|longer than)\s+"
                r"(?P<n>\d+)\s+(?P<u>days?|weeks?|months?)\b",
                st.text,
            )
            stage = m and [
                s for s in self.vocab.lookup(tokens(m["mid"].removeprefix("the "))) if s.field == "stage"
            ]
            if not stage:
                m = None
        if m is not None and st.claims.free(m.start(), m.end()):
            days = int(m["n"]) * {"d": 1, "w": 7, "m": 30}[m["u"][0]]
            st.stuck_days = days
            # the stage named in the middle ("negotiation") is left for the value pass; "been sitting" is one verb
            if re.fullmatch(
                r"\s*(?:sitting|stuck|stalled|idle|parked|sat|languishing|around|there)*\s*", m["mid"]
            ):
                st.claims.take(m.start(), m.end())
            st.claims.take(m.start(), m.start("mid"))
            st.claims.take(m.end("mid"), m.end())
            st.trace.append(TraceEntry(m.group(), f"open deals in the same stage for over {days} days"))
            st.target_hint = st.target_hint or "deals"
            return
        self._stuck_default(st)

    def _stuck_default(self, st: _State) -> None:
        m = re.search(
            r"\b(?:stuck|stalled|stalling|stale|idle|languishing|sitting)\b(?:\s+(?:in\s+(?:the\s+same\s+|their\s+|its\s+|one\s+)?stage\s+)?(?:for\s+)?(?:over|more than|at least|longer than)?\s*(?P<n>\d+)\s+(?P<u>days?|weeks?|months?))?",
            st.text,
        )
        if not m:
            return
        days = self.stuck_days
        if m["n"]:
            days = int(m["n"]) * {"d": 1, "w": 7, "m": 30}[m["u"][0]]
        st.stuck_days = days
        st.claims.take(m.start(), m.end())
        st.trace.append(TraceEntry(m.group(), f"open deals in the same stage for over {days} days"))
        st.target_hint = st.target_hint or "deals"

    def _activity_conditions(self, st: _State) -> None:
        text = st.text
        negative = [
            rf"\b(?:no|without|zero|lack of|lacking)\s+(?:any\s+)?(?:recent\s+)?(?:logged\s+)?(?P<t>{_ACT_ANY}|{_ACT_TYPED})\b",
            rf"\b(?:not|never)\s+(?:yet\s+|once\s+|ever\s+)?(?:been\s+|had\s+|received\s+|got\s+|gotten\s+)?(?:an?\s+|any\s+)?(?:yet\s+)?(?P<t>{_ACT_ANY}|{_ACT_TYPED})\b",
            rf"\b(?:nobody|no one|noone|none of us)\s+(?:has\s+|have\s+|had\s+)?(?P<t>{_ACT_ANY}|{_ACT_TYPED})\b",
        ]
        positive = [
            r"\b(?:we|i|you|they|who|that|which|have|has|had|were|was|been|got|recently)\s+(?:been\s+|recently\s+|already\s+)?(?P<t>contacted|touched|reached out(?: to)?|engaged|emailed|e-mailed|called|phoned|met(?: with)?|followed up(?: with)?|heard from)\b",
            r"\b(?P<t>contacted|emailed|e-mailed|called|phoned|met with|followed up with|reached out to)\b",
            rf"\b(?:with|had|have|has|having|got)\s+(?:an?\s+|any\s+|some\s+|recent\s+|at least one\s+)?(?P<t>activit(?:y|ies)|interactions?|touchpoints?|touches|{_ACT_TYPED})\b",
        ]
        for exists, pats in ((False, negative), (True, positive)):
            for pattern in pats:
                for m in re.finditer(pattern, text):
                    if not st.claims.free(m.start(), m.end()):
                        continue
                    word = m["t"]
                    if exists and word in ("contact",):
                        continue
                    kind = _ACTIVITY_TYPE_WORDS.get(word) or _ACTIVITY_TYPE_WORDS.get(word.split()[0])
                    types: tuple[str, ...] = ()
                    if kind:
                        values = self.vocab.categories.get(("activities", "type"), [])
                        types = tuple(v for v in values if v.lower() == kind) or (kind,)
                    st.claims.take(m.start(), m.end())
                    window = self._adjacent_time(st, m.end()) or self._leading_time(st)
                    start = end = None
                    phrase = m.group().strip()
                    if window is not None:
                        start, end = window.past
                        phrase += " " + window.phrase
                        st.used_times.add(id(window))
                        st.relative_time |= window.relative
                    st.conditions.append(ActivityCondition(exists, types, start, end, phrase))
                    st.trace.append(
                        TraceEntry(
                            phrase,
                            ("has " if exists else "has no ") + ("/".join(types) or "any") + " activity",
                        )
                    )

    def _adjacent_time(self, st: _State, pos: int) -> TimeExpr | None:
        for t in st.times:
            if id(t) in st.used_times:
                continue
            gap = st.text[pos : t.start_char]
            if t.start_char >= pos and re.fullmatch(
                r"\s*(?:(?:for|in|yet|at all|so far|ever|anyone|us|them|him|her|by us|from us)\s+)*", gap
            ):
                return t
        return None

    def _leading_time(self, st: _State) -> TimeExpr | None:
        """A time phrase that opens the question ("in the past 2 weeks, deals with no activity") belongs to
        the activity condition, as it would right after it."""
        for t in st.times:
            if id(t) not in st.used_times and t.start_char == 0 and not st.time_cues.get(id(t)):
                return t
        return None

    def _related_absence(self, st: _State) -> None:
        """ "companies with no open deals", "accounts without contacts": a company measure equal to zero."""
        m = re.search(
            r"\b(?P<who>compan(?:y|ies)|accounts?|organi[sz]ations?|firms?|businesses)"
            r"(?:\s+(?!no\b|without\b|with\b|that\b|having\b|zero\b|not\b)[a-z]+){0,4}?"  # "in germany"
            r"\s+(?:that\s+have\s+|having\s+|with\s+|without\s+)?"
            r"(?P<neg>no|zero|without|not any)\s+(?:any\s+)?(?P<k>open|won|lost|active)?\s*(?P<n>deals?|opportunit(?:y|ies)|opps?|contacts?|activit(?:y|ies))\b",
            st.text,
        )
        if not m:
            return
        start = m.start("neg") if m.group().find(" with ") < 0 else m.start("neg")
        start = min(start, st.text.find(" with", m.start("who")) + 1) if " with" in m.group() else start
        kind = {"active": "open"}.get(m["k"], m["k"])
        noun = m["n"]
        if noun.startswith("contact"):
            measure = "contact_count"
        elif noun.startswith("activit"):
            measure = "activity_count"
        else:
            measure = {"open": "open_deal_count", "won": "won_deal_count", "lost": "lost_deal_count"}.get(
                kind, "deal_count"
            )
        st.claims.take(start, m.end())
        st.group_filters.append(GroupFilter(measure, "eq", 0))
        st.trace.append(TraceEntry(st.text[start : m.end()], f"company {measure} = 0"))

    def _time_field(
        self, st: _State, t: TimeExpr, target: str, stage_words: set[str]
    ) -> tuple[str, str, bool]:
        before = st.text[: t.start_char]
        if id(t) in st.time_cues:
            before = st.time_cues[id(t)]  # the verb claimed next to the phrase decides
        cues = [
            (r"\b(?:won|win|wins|lost|lose|closed|signed|converted deals)\b", ("deals", "closed_at", False)),
            (r"\b(?:closing|close|closes|due)\b", ("deals", "expected_close_at", True)),
            (r"\b(?:became|become|turned|converted)\b", ("contacts", "customer_at", False)),
            (
                r"\b(?:created|added|opened|entered|started|new|engaged|joined|signed up|came in|logged|imported)\b",
                (None, "created_at", False),
            ),
            (r"\b(?:updated|modified|changed|edited)\b", (None, "updated_at", False)),
        ]
        nearest = None
        for pattern, meaning in cues:
            for m in re.finditer(pattern, before):
                if nearest is None or m.start() > nearest[0]:
                    nearest = (m.start(), meaning, m.end())
        if nearest is None:
            for pattern, meaning in cues:
                m = re.search(pattern, st.text[t.end_char :])
                if m:
                    nearest = (t.end_char + m.start(), meaning, t.end_char + m.end())
                    break
        if (
            nearest
            and nearest[1][1] == "expected_close_at"
            and stage_words
            and stage_words <= {"won", "lost", "closed"}
        ):
            nearest = (
                nearest[0],
                ("deals", "closed_at", False),
                nearest[2],
            )  # "did X close last month": a win
        if nearest:
            if st.claims.free(nearest[0], nearest[2]):
                st.claims.take(nearest[0], nearest[2])
            entity, fld, ahead = nearest[1]
            if entity is None:
                entity = target
                if target == "activities":
                    fld = "occurred_at"
            return entity, fld, ahead
        if "closing" in stage_words:
            return "deals", "expected_close_at", True
        if target == "deals":
            if stage_words and stage_words <= {"won", "lost", "closed"}:
                return "deals", "closed_at", False
            return "deals", "created_at", False
        if target == "activities":
            return "activities", "occurred_at", False
        if st.aggregate and st.group and st.group[0] in ("deals", "*") and target == "deals":
            return "deals", "created_at", False
        return target, "created_at", False
