"""Question -> typed plan: rules for the grammar of CRM questions, the learned vocabulary for their values.

The parser reads the question in ordered passes (`Parser.parse`), each claiming the characters it understood
and writing a trace entry (which words meant what): the semantic layer's metrics, groups and rankings
(semantics.py), ordering and top-k, counts and groupings, "stuck", record-derived dates (derived_dates.py),
activity presence and
absence ("no contact in 14 days", "never emailed"), amounts, similarity anchors ("like Alice Johnson"),
free-text parts ("mentioned pricing concerns"), stage and score words, entity nouns, then field values,
names and owners from the vocabulary (exact, synonym, fuzzy, embedding). Time phrases are resolved against
the as-of date and given to the field the question's verb points at. Whatever content word no pass claimed
is reported as not understood, with suggestions, and the plan is marked low-confidence: never a silent
guess.

Where things are: `parse` below is the ordered list of passes; the passes live by phrase family in
semantics.py, derived_dates.py (functions) and grouping.py, activity.py, amounts.py, records.py, values.py,
suggest.py (mixed into Parser); the word tables in lexicon.py; the parse state, trace and result in state.py;
assembly.py turns the state into the plan and confidence.py settles how sure it is. A new phrase family is
one module with one pass, called from `parse`.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

from holocrm_core.metrics import SemanticLayer
from holocrm_core.nlq import derived_dates, semantics
from holocrm_core.nlq.activity import ActivityPasses
from holocrm_core.nlq.amounts import AmountsPasses
from holocrm_core.nlq.grouping import GroupingPasses
from holocrm_core.nlq.lexicon import (
    FIELD_WORDS,
    STOPWORDS,
    TYPO_CONFIDENCE,
)
from holocrm_core.nlq.money import find_quantities
from holocrm_core.nlq.normalise import normalise, surface
from holocrm_core.nlq.records import RecordsPasses
from holocrm_core.nlq.state import (
    ParseResult,
    TraceEntry,
    _State,
)
from holocrm_core.nlq.suggest import SuggestPasses
from holocrm_core.nlq.timeparse import find_times
from holocrm_core.nlq.values import ValuesPasses
from holocrm_core.nlq.vocabulary import Vocabulary


def normalize(question: str) -> str:
    """The question as the grammar reads it, without typo correction (see normalise.py)."""
    return surface(question, [])


# Words the grammar itself uses that its patterns spell only as stems ("compan(?:y|ies)").
_EXTRA_GRAMMAR_WORDS = [
    "companies",
    "company",
    "accounts",
    "account",
    "opportunities",
    "opportunity",
    "activities",
    "activity",
    "organisations",
    "organisation",
    "organizations",
    "organization",
    "emails",
    "calls",
    "meetings",
    "notes",
    "quarter",
    "quarters",
    "month",
    "months",
    "week",
    "weeks",
    "year",
    "years",
    "days",
    "day",
    "ago",
    "since",
    "before",
    "after",
    "between",
    "during",
    "closing",
    "closed",
    "stuck",
    "stalled",
    "mentioned",
    "discussed",
    "similar",
    "subsidiaries",
    "subsidiary",
    "parent",
    "founded",
    "established",
    "incorporated",
    "office",
    "offices",
    "based",
    "located",
    "missing",
    "without",
    "first",
    "second",
    "third",
    "fourth",
    "last",
    "quarter",
    "half",
]


@lru_cache(maxsize=1)
def grammar_words() -> frozenset[str]:
    """Every whole word the parser's patterns, word lists and comments spell: the lexicon typos are corrected
    to. Read from the source text (a regex scan, not an AST walk: this runs in every `holocrm ask`)."""
    from pathlib import Path

    words: set[str] = set(_EXTRA_GRAMMAR_WORDS) | STOPWORDS | FIELD_WORDS
    here = Path(__file__).parent
    for name in (
        "parser.py",
        "lexicon.py",
        "state.py",
        "grouping.py",
        "activity.py",
        "amounts.py",
        "records.py",
        "values.py",
        "suggest.py",
        "assembly.py",
        "confidence.py",
        "timeparse.py",
        "money.py",
        "vocabulary.py",
        "normalise.py",
    ):
        source = re.sub(r"\\[a-zA-Z]", " ", (here / name).read_text())  # regex escapes: "\\bexcluding"
        source = re.sub(r"(?m)#(?! of)[^\n]*$", " ", source)  # comments may quote typos on purpose
        # a word that ends where a regex alternative or the literal ends is whole, not a stem ("compan(")
        words.update(re.findall(r"(?<![a-zA-Z_])[a-z]{3,}(?=$|[\s|)?,'\"/-])", source))
    return frozenset(words)


class Parser(GroupingPasses, ActivityPasses, AmountsPasses, RecordsPasses, ValuesPasses, SuggestPasses):
    def __init__(
        self,
        vocab: Vocabulary,
        *,
        has_scores: dict[str, bool] | None = None,
        stuck_days: int = 30,
        semantic: SemanticLayer | None = None,
    ):
        self.vocab = vocab
        self.has_scores = has_scores or {}
        self.stuck_days = stuck_days
        self.layer = semantic or SemanticLayer.default()
        self._dims: dict | None = None
        self._suggesting = True

    @property
    def layer_words(self) -> frozenset[str]:
        """Every word of the semantic layer's terms: typos are corrected to them, never away from them."""
        return frozenset(w for term in self.layer.terms() for w in term.split() if len(w) >= 3)

    @property
    def dims(self) -> dict:
        if self._dims is None:
            self._dims = semantics.dimension_terms(self.layer, self.vocab)
        return self._dims

    # ------------------------------------------------------------------------------------------------
    def parse(self, question: str, as_of: datetime, prefer: dict | None = None) -> ParseResult:
        """`prefer`: words -> (kind, value) of the sense to read them as (a reading the asker picked)."""
        text, rewrites = normalise(question, self.vocab.typo_fixer(grammar_words() | self.layer_words))
        st = _State(text, as_of, self.vocab)
        st.prefer = dict(prefer or {})
        for r in rewrites:
            st.trace.append(TraceEntry(r.before, f"read as {r.after!r}", "typo" if r.guess else "normalised"))
            if r.guess:
                st.confidence *= TYPO_CONFIDENCE
        self._protect_vocabulary_numbers(st)
        self._semantic(st)
        semantics.deal_words(st, self.layer, TraceEntry)
        semantics.absent_entity_words(st, self.layer, self.vocab, TraceEntry)
        self._sorting(st)
        self._aggregates(st)
        self._stuck(st)
        derived_dates.record_dates(st, TraceEntry)
        self._relations(st)
        self._nullness(st)
        quantities = find_quantities(text, st.claims.spans + st.protected)
        blocked = [(q.start_char, q.end_char) for q in quantities if q.currency or q.noun]
        st.times = find_times(text, as_of, blocked + st.claims.spans + st.protected)
        for t in st.times:
            st.claims.take(t.start_char, t.end_char)
        derived_dates.stage_since(st, TraceEntry)
        self._time_cues(st)
        self._activity_conditions(st)
        self._quantities(st, [q for q in quantities if st.claims.free(q.start_char, q.end_char)])
        self._related_absence(st)
        self._similarity(st)
        self._free_text(st)
        self._stage_and_score_words(st)
        self._entity_nouns(st)
        self._values(st)
        self._field_words(st)
        return self._finish(st)

    # ---- passes ------------------------------------------------------------------------------------
    def _semantic(self, st: _State) -> None:
        """Metrics, their groups and rankings, read from the semantic layer (see nlq/semantics.py)."""
        free = st.claims.free
        for m in re.finditer(r"\b(?:in|on)\s+(?:the\s+|our\s+)?(?:open\s+)?pipe(?:line)?\b", st.text):
            if free(m.start(), m.end()):
                st.claims.take(m.start(), m.end())
                st.implied_open = True
                st.target_hint = st.target_hint or "deals"
                st.trace.append(TraceEntry(m.group(), "open deals (semantic layer: open pipeline)"))
        ranks_groups = semantics.find_ranking(st.text, self.dims, free) is not None
        found = semantics.find_metric(st.text, self.layer, self.vocab, free, ranks_groups)
        if found is None:
            return
        ask, (start, end) = found
        ranked_records = re.search(
            r"\b(?:most|highest|largest|biggest|top|lowest|least|smallest)\s+$", st.text[:start]
        )
        if (
            ask.metric.aggregate in ("sum", "count")
            and ranked_records
            and semantics.find_ranking(st.text, self.dims, free) is None
        ):
            return  # "the 5 accounts with the most won revenue": records ranked by a measure (the grammar's)
        st.claims.take(start, end)
        metric = ask.metric
        st.trace.append(
            TraceEntry(
                ask.words, f"metric {metric.label}: {metric.description or metric.aggregate}", "semantic"
            )
        )
        for key, (a, b), words in semantics.find_groups(st.text, self.dims, free):
            st.claims.take(a, b)
            ask.groups.append(key)
            st.trace.append(TraceEntry(words, f"per {key.words()}"))
            for m in semantics.BREAKDOWN_WORDS.finditer(st.text):
                if free(m.start(), m.end()):
                    st.claims.take(m.start(), m.end())
        ranking = semantics.find_ranking(st.text, self.dims, free)
        if ranking is not None:
            key, (a, b), limit, ascending, words = ranking
            st.claims.take(a, b)
            top = re.search(
                r"\b(?:the\s+)?(?:most|highest|largest|biggest|best|top|greatest|strongest|least|lowest|smallest|worst|weakest)\b",
                st.text,
            )
            if top and free(top.start(), top.end()):
                st.claims.take(top.start(), top.end())
            brought = re.search(
                r"\b(?:brought\s+in|bring\s+in|brings\s+in|generated|has|had|have)\b", st.text[b:]
            )
            if brought and free(b + brought.start(), b + brought.end()):
                st.claims.take(b + brought.start(), b + brought.end())
            if key not in ask.groups:
                ask.groups.insert(0, key)
            ask.limit, ask.ascending = limit, ascending
            st.trace.append(
                TraceEntry(words, f"the {limit} {'lowest' if ascending else 'highest'} per {key.words()}")
            )
        st.metric_ask = ask
        st.target_hint = metric.entity

    def _protect_vocabulary_numbers(self, st: _State) -> None:
        """Product and record names with a number in them ("GTK 500") are names, never amounts or dates:
        the vocabulary wins over the generic number patterns."""
        for phrase in self.vocab.digit_phrases():
            for m in re.finditer(rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])", st.text):
                st.protected.append((m.start(), m.end()))

    # ---- assembling the plan -----------------------------------------------------------------------
    def _finish(self, st: _State) -> ParseResult:
        """Plan assembly (assembly.py), then the confidence step (confidence.py)."""
        from holocrm_core.nlq.assembly import assemble

        return assemble(self, st)
