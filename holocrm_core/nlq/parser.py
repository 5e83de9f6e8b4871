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
guess. The passes write to the parse state; assembly.py turns the state into the plan, confidence.py settles
how sure it is. A new phrase family is one module with one pass function called from `parse`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from holocrm_core.metrics import SemanticLayer
from holocrm_core.nlq import derived_dates, semantics
from holocrm_core.nlq.meaning import NEGATION_WORDS
from holocrm_core.nlq.money import Quantity, find_quantities
from holocrm_core.nlq.normalise import normalise, surface
from holocrm_core.nlq.plan import (
    ActivityCondition,
    FieldFilter,
    GroupFilter,
    Plan,
    SimilarTo,
    Sort,
    TextMatch,
    TimeWindow,
)
from holocrm_core.nlq.timeparse import TimeExpr, find_times
from holocrm_core.nlq.vocabulary import Sense, Vocabulary, tokens
from holocrm_core.schema import ENTITIES as SCHEMA_ENTITIES

# "top 99999999999999999999": as many as there are, not an overflow.
MAX_LIMIT = 1_000_000
# Two readings of a word equally good: the answer may be about the other one.
AMBIGUOUS_CONFIDENCE = 0.75
# Filters that exclude each other ("engaging" and "lost"): the plan is certainly not what was meant.
CONTRADICTION_CONFIDENCE = 0.3
# A corrected typo is a guess: one keeps an answer high-confidence, two do not.
TYPO_CONFIDENCE = 0.88
# Words that carry no meaning of their own in a CRM question.
STOPWORDS = set(
    ["a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "for", "from", "by", "with", "who", "whom", "which", "that", "what", "when", "where", "whose", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "do", "does", "did", "show", "me", "list", "find", "get", "give", "all", "any", "some", "my", "our", "their", "its", "this", "these", "those", "there", "here", "it", "them", "they", "we", "i", "you", "your", "us", "please", "can", "could", "would", "will", "shall", "should", "tell", "see", "display", "return", "fetch", "pull", "up", "out", "just", "only", "also", "currently", "now", "still", "ones", "one", "records", "record", "rows", "entries", "there's", "what's", "whats", "who's", "which're", "let", "lets", "let's", "need", "want", "looking", "look", "for", "into", "as", "so", "then", "than", "were", "any", "such", "same", "worth", "owned", "owns", "own", "assigned", "handled", "managed", "belonging", "belong", "having", "got", "getting", "made", "make", "makes", "each", "every", "per", "within", "how", "many", "much", "currently", "working", "work", "works", "employed", "selling", "sell", "sells", "sold", "came", "come", "comes", "coming", "originated", "employing", "based", "located", "headquartered", "situated", "hq"]
)  # fmt: skip
# Words that name a field; harmless next to a value ("technology sector", "negotiation stage").
FIELD_WORDS = set(
    ["sector", "sectors", "industry", "industries", "vertical", "verticals", "space", "stage", "stages", "phase", "status", "statuses", "region", "regions", "territory", "territories", "country", "countries", "product", "products", "band", "bands", "size", "segment", "segments", "level", "levels", "seniority", "type", "types", "owner", "owners", "rep", "reps", "named", "called", "value", "values", "amount", "amounts", "deal-size", "lifecycle", "category", "market", "markets", "city", "cities", "currency"]
)  # fmt: skip

ENTITY_NOUNS = [
    (
        r"contacts?|leads?|people|persons?|prospects?|buyers?|decision[- ]makers?|stakeholders?|champions?|individuals",
        "contacts",
    ),
    (r"customers?|clients?", "contacts"),
    (
        r"compan(?:y|ies)|accounts?|organi[sz]ations?|orgs?|firms?|businesses|business|logos?|enterprises",
        "companies",
    ),
    (r"deals?|opportunit(?:y|ies)|opps?|opptys?|pipeline|contracts?|sales", "deals"),
    (
        r"activit(?:y|ies)|interactions?|touchpoints?|touches|engagements?|emails?|calls?|meetings?|notes?",
        "activities",
    ),
]
_ACTIVITY_TYPE_WORDS = {
    "email": "email", "emails": "email", "emailed": "email", "mail": "email", "e-mail": "email", "e-mailed": "email",
    "call": "call", "calls": "call", "called": "call", "phoned": "call", "rang": "call",
    "meeting": "meeting", "meetings": "meeting", "met": "meeting", "met with": "meeting",
    "note": "note", "notes": "note",
}  # fmt: skip
_ACT_ANY = r"contact(?:ed)?|touch(?:ed|es)?|touchpoints?|reached(?: out(?: to)?)?|engaged|engagement|activit(?:y|ies)|interactions?|outreach|follow[- ]?ups?|followed up(?: with)?|in touch|heard from"
_ACT_TYPED = r"e-?mail(?:s|ed)?|mail(?:s|ed)?|calls?|called|phoned|rang|meetings?|met(?: with)?|notes?"
_NEGATION_BEFORE = re.compile(
    r"(?:\bnot\s+(?:in\s+|from\s+|at\s+)?|\bnon[- ]?|\bexcluding\s+|\bexcept(?:\s+for)?\s+|\bother than\s+|\boutside(?:\s+of)?(?:\s+the)?\s+|\bbut not\s+(?:in\s+)?|\bwithout\s+)$"
)
_GROUP_FIELDS = {
    "stage": ("deals", "stage"), "stages": ("deals", "stage"),
    "owner": ("*", "owner"), "owners": ("*", "owner"), "rep": ("*", "owner"), "reps": ("*", "owner"),
    "sales rep": ("*", "owner"), "agent": ("*", "owner"), "sales agent": ("*", "owner"), "salesperson": ("*", "owner"),
    "industry": ("companies", "industry"), "sector": ("companies", "industry"), "vertical": ("companies", "industry"),
    "product": ("deals", "product"), "region": ("companies", "region"), "country": ("companies", "country"),
    "size": ("companies", "size_band"), "size band": ("companies", "size_band"), "segment": ("companies", "size_band"),
    "seniority": ("contacts", "seniority"), "status": ("contacts", "lifecycle_status"),
    "lifecycle": ("contacts", "lifecycle_status"), "type": ("activities", "type"), "activity type": ("activities", "type"),
    "direction": ("activities", "direction"), "company": ("*", "company_id"), "account": ("*", "company_id"),
    "currency": ("deals", "currency"),
}  # fmt: skip
_GROUP_MEASURES = {  # company measure -> (aggregate over the group's deals, stage restriction)
    "won_value": ("sum", "won"), "open_pipeline": ("sum", "open"), "lost_value": ("sum", "lost"),
    "deal_value": ("sum", None), "deal_count": ("count", None), "won_deal_count": ("count", "won"),
    "open_deal_count": ("count", "open"), "lost_deal_count": ("count", "lost"),
}  # fmt: skip
_GROUP_NOUNS = {  # "top 5 owners by won deals": the noun is a group of deals
    "owners": "owner", "reps": "owner", "sales reps": "owner", "agents": "owner", "sales agents": "owner",
    "salespeople": "owner", "sellers": "owner", "products": "product", "industries": "industry",
    "sectors": "industry", "regions": "region", "stages": "stage",
}  # fmt: skip
# "by X" as an ordering: key -> (is_measure, key)
_SORT_KEYS = [
    (r"(?:open\s+)?pipeline(?:\s+value)?", (True, "open_pipeline")),
    (
        r"won\s+(?:revenue|value|amount|deal value)|revenue\s+won|closed[- ]won\s+(?:revenue|value)|wins?\s+value",
        (True, "won_value"),
    ),
    (r"(?:number of\s+)?won deals|wins|deals won", (True, "won_deal_count")),
    (r"(?:number of\s+)?open deals", (True, "open_deal_count")),
    (r"(?:number of\s+|count of\s+)?deals|deal count", (True, "deal_count")),
    (r"(?:number of\s+)?contacts", (True, "contact_count")),
    (r"(?:number of\s+)?activit(?:y|ies)", (True, "activity_count")),
    (r"(?:annual\s+)?revenue|turnover", (False, "annual_revenue")),
    (r"employees|headcount|employee count|staff|company size", (False, "employees")),
    (r"(?:deal\s+)?(?:value|amount|size)|price", (False, "value")),
    (r"(?:lead\s+)?score", (False, "score")),
    (r"close date|closing date|expected close(?: date)?", (False, "expected_close_at")),
    (r"(?:creation date|created(?: date)?|date created|date added|age)", (False, "created_at")),
    (r"last activity|recent activity|recency|date", (False, "_recency")),
]


# Words a suggested rephrasing may never drop: without them the question means the opposite.
_NEGATION_WORDS = NEGATION_WORDS
# Words that end a record name after "like" / "subsidiaries of".
_NAME_STOP = {"in", "at", "from", "with", "who", "that", "which", "over", "under", "but", "and", "whose", "where", "not",
              "founded", "established", "based", "created", "since", "before", "after"}  # fmt: skip
# "5 companies like X": a leading count of the records asked for.
_LEADING_COUNT = re.compile(
    r"^(?:(?:show|list|give|find|get|pull)\s+(?:me\s+|us\s+)?)?(?:the\s+)?(?P<n>\d{1,3})\s+(?=(?:[a-z]+\s+)?(?:"
    + "|".join(p for p, _ in ENTITY_NOUNS)
    + r")\b)(?!(?:days?|weeks?|months?|years?)\b)"
)
# Clauses that name what activities talked about without a "mentioned" verb: "where price was the problem",
# "lost because of the budget freeze", "with objections about security".
_FREE_TEXT_CLAUSE = re.compile(
    r"\bwhere\s+(?P<t>[a-z0-9 ]+?)\s+(?:was|were|is|are|became)\s+(?:the\s+|an?\s+)?(?:main\s+|big\s+|real\s+|key\s+)?"
    r"(?:problem|issue|concern|objection|blocker|sticking point|reason|topic|question)s?\b"
    r"|\b(?:because of|due to(?!\s+(?:close|closing|renew|sign|expire|be|end|start)\b)|citing|cited|over concerns? (?:about|over)|with (?:concerns?|complaints?|objections?|"
    r"worries|questions) (?:about|over|on|regarding))\s+(?P<t2>[a-z0-9 ]+?)\s*$"
)
# Verbs that date a record's own creation or update; never stage words.
_DATE_VERBS = {"created", "added", "opened", "entered", "started", "engaged", "joined", "logged", "imported", "updated",
               "modified", "changed", "edited", "new"}  # fmt: skip
# Words that name a column whose emptiness a question may ask about ("deals with no account").
NULL_FIELD_WORDS = {
    "account": "company_id", "company": "company_id", "organisation": "company_id", "organization": "company_id",
    "contact": "contact_id", "contact person": "contact_id", "owner": "owner", "rep": "owner", "product": "product",
    "close date": "expected_close_at", "expected close date": "expected_close_at", "email": "email",
    "email address": "email", "phone": "phone", "phone number": "phone", "industry": "industry", "title": "title",
    "job title": "title", "value": "value", "amount": "value", "parent": "parent_company_id",
    "parent company": "parent_company_id", "domain": "domain", "website": "domain", "country": "country",
    "region": "region", "city": "city", "seniority": "seniority",
}  # fmt: skip
ENTITY_COLUMNS = {entity: set(columns) for entity, columns in SCHEMA_ENTITIES.items()}


@dataclass
class TraceEntry:
    words: str
    meaning: str
    how: str = "rule"  # rule | exact | synonym | fuzzy | embedding | default

    def as_dict(self) -> dict:
        return {"words": self.words, "meaning": self.meaning, "how": self.how}


@dataclass
class ParseResult:
    plan: Plan
    trace: list[TraceEntry]
    unknown_words: list[str]
    suggestions: list[str]
    understood: bool
    confidence: float
    notes: list[str] = field(default_factory=list)
    relative_time: bool = False
    guessed: list[str] = field(default_factory=list)  # words read approximately (typo, fuzzy, embedding)
    text: str = ""  # the question as the grammar read it
    ambiguous: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # words -> readings


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


class _Claims:
    """Character spans of the question already understood."""

    def __init__(self, text: str):
        self.text = text
        self.spans: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return not any(start < b and a < end for a, b in self.spans)

    def take(self, start: int, end: int) -> None:
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        if start < end:
            self.spans.append((start, end))

    def words(self) -> list[tuple[int, int, str]]:
        out = []
        for m in re.finditer(r"[^\s]+", self.text):
            if self.free(m.start(), m.end()):
                out.append((m.start(), m.end(), m.group()))
        return out


class Parser:
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
        found = semantics.find_metric(st.text, self.layer, self.vocab, free)
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

    def _relations(self, st: _State) -> None:
        """ "subsidiaries of Acme" / "parent company of Codehow": the company hierarchy from the schema's
        foreign key (parent_company_id) or a custom field named like one (subsidiary_of)."""
        m = re.search(
            r"\b(?P<rel>subsidiar(?:y|ies)|child compan(?:y|ies)|daughter compan(?:y|ies)|compan(?:y|ies) owned by|"
            r"parent(?: compan(?:y|ies)| account| organi[sz]ation)?)\s+(?:of|owned by|under|for)\s+",
            st.text,
        )
        if m is None or not st.claims.free(m.start(), m.end()):
            return
        found = self._name_at(st, m.end(), kinds=("company",))
        relation = self.vocab.parent_relation
        if found is None or relation is None:
            return
        sense, end, how = found
        parent = m["rel"].startswith("parent")
        column, by_name = relation
        if parent:
            parent_id = self.vocab.company_parents.get(sense.value)
            if parent_id is None:
                return
            filt = FieldFilter("companies", "company_id", "eq", parent_id)
            meaning = f"the parent company of {sense.label}"
        elif by_name:
            spelled = self.vocab.value_spelled("companies", column, sense.label)
            if spelled is None:
                return
            filt = FieldFilter("companies", column, "eq", spelled)
            meaning = f"companies.{column} = {spelled}"
        else:
            filt = FieldFilter("companies", column, "eq", sense.value)
            meaning = f"companies whose {column} is {sense.label} ({sense.value})"
        st.claims.take(m.start(), end)
        st.filters.append(filt)
        st.target_hint = st.target_hint or "companies"
        st.trace.append(TraceEntry(st.text[m.start() : end], meaning, how))
        if how == "fuzzy":
            st.confidence *= 0.85

    def _name_at(self, st: _State, pos: int, kinds=("contact", "company")):
        """(sense, end, how) of the record name starting at `pos`: exact or synonym first, then fuzzy."""
        words = []
        for w in re.finditer(r"[^\s]+", st.text[pos:]):
            if w.group() in _NAME_STOP or not st.claims.free(pos + w.start(), pos + w.end()):
                break
            words.append((pos + w.start(), pos + w.end(), w.group()))
        for n in range(min(len(words), 6), 0, -1):
            senses = [
                s for s in self.vocab.lookup(tokens(" ".join(w for _, _, w in words[:n]))) if s.kind in kinds
            ]
            if senses:
                pref = [s for s in senses if s.entity == st.noun_target_guess()] or senses
                return pref[0], words[n - 1][1], "exact" if pref[0].how == "exact" else "synonym"
        entities = tuple(k + "s" if k == "contact" else "companies" for k in kinds)
        for n in range(min(len(words), 4), 0, -1):
            hit = self.vocab.fuzzy_name(" ".join(w for _, _, w in words[:n]), entities=entities)
            if hit:
                entity, rid, name, _ = hit
                kind = "contact" if entity == "contacts" else "company"
                return Sense(kind, entity, "", rid, name), words[n - 1][1], "fuzzy"
        return None

    def _nullness(self, st: _State) -> None:
        """ "deals with no account", "contacts without an email": a column of the target that is empty."""
        words = "|".join(sorted((re.escape(w) for w in NULL_FIELD_WORDS), key=len, reverse=True))
        pattern = (
            r"\b(?P<neg>with\s+no|without|missing|lacking|(?:has|have|having)\s+no|no)\s+(?P<art>(?:an?|any|the)\s+)?"
            rf"(?P<w>{words})\b(?P<tail>\s+(?:assigned|set|linked|attached|given|on file))?"
            r"(?!\s+(?:in|for|since|during|over|within|this|last|past|yet)\b)(?!\s+\d)"
        )
        target = st.noun_target_guess()
        for m in re.finditer(pattern, st.text):
            if not st.claims.free(m.start(), m.end()):
                continue
            word = m["w"]
            # "no contact" alone means no activity ("deals no contact 2 weeks"); "without a contact" is the field
            if word == "contact" and not (m["art"] or m["tail"]):
                continue
            column = NULL_FIELD_WORDS[word]
            entity = target if column in ENTITY_COLUMNS.get(target, ()) else None
            if entity is None:
                continue
            st.claims.take(m.start(), m.end())
            st.filters.append(FieldFilter(entity, column, "is_null"))
            st.trace.append(TraceEntry(m.group(), f"{entity}.{column} is empty"))

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

    def _sorting(self, st: _State) -> None:
        text = st.text
        for m in re.finditer(r"\b(?:sort(?:ed)?|order(?:ed)?|rank(?:ed)?)\s+by\s+", text):
            st.claims.take(m.start(), m.end())
            st.explicit_by_at = m.end()
        m = re.search(
            r"\b(?P<w1>top|best|first|leading|largest|biggest|highest|smallest|lowest|oldest|newest|latest|most recent|earliest)\s+(?P<n>\d+)\b"
            r"|\b(?P<n2>\d+)\s+(?P<w2>largest|biggest|highest[- ]value|highest|most valuable|top|best|smallest|lowest|cheapest|oldest|newest|latest|most recent|earliest|most)\b"
            r"|\bthe\s+(?P<n3>\d+)(?=\s+[a-z])(?!\s+(?:days?|weeks?|months?|years?|employees|deals|contacts|largest|biggest|"
            r"highest|most|top|best|smallest|lowest|cheapest|oldest|newest|latest|earliest)\b)",
            text,
        )
        if m:
            word = m["w1"] or m["w2"] or "top"
            st.limit = min(int(m["n"] or m["n2"] or m["n3"]), MAX_LIMIT)
            st.sort_word = word
            st.claims.take(m.start(), m.end())
            st.trace.append(TraceEntry(m.group(), f"first {st.limit}, {word}"))
        else:
            m = re.search(
                r"\b(?:the\s+)?(?P<w>largest|biggest|highest[- ]value|most valuable|smallest|cheapest|oldest|newest|latest|most recent|earliest)\b(?!\s+\d)",
                text,
            )
            lead = _LEADING_COUNT.match(text)
            if m is None and lead and st.claims.free(lead.start("n"), lead.end("n")):
                st.limit = int(lead["n"])
                st.claims.take(lead.start(), lead.end("n"))
                st.trace.append(TraceEntry(lead.group().strip(), f"first {st.limit}"))
            if m:
                st.sort_word = m["w"]
                after = text[m.end() :].split()
                plural = bool(after) and after[0].endswith("s")
                st.limit = None if plural else 1
                st.claims.take(m.start(), m.end())
                st.trace.append(TraceEntry(m.group(), f"{m['w']}" + ("" if plural else ", first 1")))
        # "by <measure>" when it names an ordering (not a grouping dimension)
        for m in re.finditer(
            r"\b(?:by|on|in terms of|(?:with|having)\s+the\s+(?:most|highest|largest|biggest))\s+(?:their\s+|the\s+|total\s+|highest\s+|most\s+)?",
            text,
        ):
            rest = text[m.end() :]
            for pattern, (is_measure, key) in _SORT_KEYS:
                km = re.match(rf"(?:{pattern})\b", rest)
                if km and (st.sort_word or st.explicit_by_at == m.end() or st.limit):
                    st.sort_key = (is_measure, key)
                    st.claims.take(m.start(), m.end() + km.end())
                    st.trace.append(TraceEntry(text[m.start() : m.end() + km.end()], f"order by {key}"))
                    break
            if st.sort_key:
                break
        if st.sort_key is None and st.explicit_by_at is not None:
            rest = text[st.explicit_by_at :]
            for pattern, (is_measure, key) in _SORT_KEYS:
                km = re.match(rf"(?:{pattern})\b", rest)
                if km:
                    st.sort_key = (is_measure, key)
                    st.claims.take(st.explicit_by_at, st.explicit_by_at + km.end())
                    st.trace.append(TraceEntry(km.group(), f"order by {key}"))
                    break
        dm = re.search(
            r"\b(asc|ascending|desc|descending|highest first|lowest first|smallest first|largest first)\b",
            text,
        )
        if dm and (st.sort_key or st.sort_word):
            st.sort_desc = dm.group(1) not in ("asc", "ascending", "lowest first", "smallest first")
            st.claims.take(dm.start(), dm.end())

    def _aggregates(self, st: _State) -> None:
        text = st.text
        patterns = [
            (
                r"\bhow many\b|\b(?:the\s+)?(?:total\s+)?number of\b|\bcount(?:\s+of|\s+the|\s+all)?\b|\bhow much of\b",
                ("count", None),
            ),
            (
                r"\b(?:what\s+is\s+|what\s+s\s+)?(?:the\s+)?(?:average|avg|mean|typical)\s+(?:deal\s+)?(?:value|size|amount)?(?:\s+of)?\b",
                ("avg", "value"),
            ),
            (
                r"\b(?:what\s+is\s+|what\s+s\s+)?(?:the\s+)?(?:total|sum|combined)\s+(?:deal\s+)?(?:value|amount|revenue|worth|size)(?:\s+of)?\b|\bsum of\b|\bhow much\b",
                ("sum", "value"),
            ),
            (r"\b(?:the\s+)?(?:total|combined)\s+(?:open\s+)?pipeline\b", ("sum", "pipeline")),
        ]
        for pattern, (func, fld) in patterns:
            m = re.search(pattern, text)
            if m and st.claims.free(m.start(), m.end()):
                st.aggregate = func
                st.aggregate_field = "value" if fld else None
                if fld == "pipeline":
                    st.implied_open = True
                    st.target_hint = st.target_hint or "deals"
                st.claims.take(m.start(), m.end())
                st.trace.append(TraceEntry(m.group().strip(), f"{func}" + (f" of {fld}" if fld else "")))
                if func != "count":
                    st.target_hint = st.target_hint or "deals"
                break
        gm = re.search(
            r"\b(?:by|per|for each|for every|each|broken down by|grouped by|group by|split by|across)\s+(?P<g>"
            + "|".join(sorted((re.escape(k) for k in _GROUP_FIELDS), key=len, reverse=True))
            + r")s?\b",
            text,
        )
        if gm and self._role_filler(st, gm, gm["g"]):
            gm = None
        if gm and st.claims.free(gm.start(), gm.end()):
            st.group = _GROUP_FIELDS[gm["g"]]
            st.claims.take(gm.start(), gm.end())
            st.trace.append(TraceEntry(gm.group(), f"group by {gm['g']}"))
            if st.aggregate is None:
                st.aggregate = "count"
        elif gm is None:
            # a dimension the semantic layer or the export's own custom fields name ("per regional office")
            found = [g for g in semantics.find_groups(text, self.dims, st.claims.free) if g[0].grain is None]
            if found:
                key, (a, b), words = found[0]
                st.group = (key.entity, key.field)
                st.claims.take(a, b)
                st.trace.append(TraceEntry(words, f"group by {key.words()}", "semantic"))
                if st.aggregate is None:
                    st.aggregate = "count"
        # "which owner won the most deals", "top 3 products by won value": a grouping noun
        nm = re.search(
            r"\b(?:which|what|whose)\s+(?P<g1>owner|rep|sales rep|agent|sales agent|salesperson|product|industry|sector|region|stage)\b"
            r"|\b(?P<g2>"
            + "|".join(sorted((re.escape(k) for k in _GROUP_NOUNS), key=len, reverse=True))
            + r")\b"
            r"|^(?P<who>who)\b",
            text,
        )
        most = re.search(r"\b(?:the\s+)?(?:most|highest|largest|biggest|best)\b", text)
        if nm and nm["g2"] and not (most or st.limit) and self._role_filler(st, nm, nm["g2"]):
            nm = None
        if (
            nm
            and st.group is None
            and st.claims.free(nm.start(), nm.end())
            and (most or st.limit or nm["g2"])
        ):
            word = nm["g1"] or nm["g2"] or "owner"
            key = _GROUP_NOUNS.get(word, word)
            st.group = _GROUP_FIELDS.get(key, ("*", "owner"))
            st.group_ranked = True
            st.claims.take(nm.start(), nm.end())
            st.trace.append(TraceEntry(nm.group(), f"group by {st.group[1]}"))
            if most and st.claims.free(most.start(), most.end()):
                st.claims.take(most.start(), most.end())
                rest = st.text[most.end() :].lstrip()
                offset = len(st.text) - len(rest)
                for pattern, (is_measure, key) in _SORT_KEYS:
                    km = re.match(rf"(?:{pattern})\b", rest)
                    if km and is_measure and st.sort_key is None:
                        st.sort_key = (True, key)
                        st.claims.take(offset, offset + km.end())
                        st.trace.append(TraceEntry(km.group(), f"rank by {key}"))
                        break
                if st.limit is None:
                    st.limit = 1
            if st.aggregate is None:
                st.aggregate = "count"
            st.target_hint = st.target_hint or "deals"

    def _role_filler(self, st: _State, m: re.Match, word: str) -> bool:
        """ "deals won by agents in the West office": "by <role>" followed by a condition on those people is a
        filter's filler, not a group-by (a count or total still groups: "number of deals by rep")."""
        role = _GROUP_NOUNS.get(word, word).rstrip("s")
        if role not in ("owner", "rep", "agent", "sales rep", "sales agent", "salesperson", "seller"):
            return False
        if st.aggregate is not None or not re.search(
            r"\bby\s+(?:the\s+|our\s+)?$",
            st.text[: m.start() + 3] if m.group().startswith("by") else st.text[: m.start()],
        ):
            return False
        if not re.match(r"\s+(?:in|at|from|of|on|based|who|with|that|named|working)\b", st.text[m.end() :]):
            return False
        st.claims.take(m.start(), m.end())
        st.trace.append(TraceEntry(m.group(), "the deals' owners (a filter on them follows, not a grouping)"))
        return True

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
            # the stage named in the middle ("negotiation") is left for the value pass
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

    def _quantities(self, st: _State, quantities: list[Quantity]) -> None:
        text = st.text
        for q in quantities:
            st.claims.take(q.start_char, q.end_char)
            value = _num(q.amount)
            high = _num(q.high) if q.high is not None else None
            op = q.op if q.op != "between" or high is not None else "gte"
            val = [value, high] if op == "between" else value
            if not q.explicit_op:
                st.confidence *= 0.75
                st.notes.append(f"'{q.phrase}' has no comparison word: read as 'at least {q.phrase}'")
            if q.noun:
                noun = q.noun
                if noun in ("employees", "employee", "staff", "people", "headcount", "workers"):
                    st.filters.append(FieldFilter("companies", "employees", op, val))
                    st.trace.append(TraceEntry(q.phrase, f"companies.employees {op} {val}"))
                    st.target_hint = st.target_hint or "companies"
                    continue
                noun = re.sub(r"\b(?:opportunit(?:y|ies)|opps?)\b", "deals", noun)
                verb = re.search(r"\b(won|win|closed won|lost|lose)\s*$", text[: q.start_char])
                if verb and noun.startswith(("deal", "opp")):
                    noun = "won deals" if verb.group(1) in ("won", "win", "closed won") else "lost deals"
                    st.claims.take(verb.start(1), verb.end(1))
                measure = {
                    "open deals": "open_deal_count", "won deals": "won_deal_count", "lost deals": "lost_deal_count",
                    "contacts": "contact_count", "contact": "contact_count", "leads": "contact_count",
                }.get(noun)  # fmt: skip
                if measure is None:
                    measure = "deal_count" if noun.startswith(("deal", "opp")) else "activity_count"
                st.group_filters.append(GroupFilter(measure, op, val))
                st.trace.append(TraceEntry(q.phrase, f"company {measure} {op} {val}"))
                st.target_hint = st.target_hint or "companies"
                continue
            numeric = self._numeric_column(text, q)
            if numeric is not None:
                (entity, col, top), span = numeric
                scale = 100 if q.percent and top <= 1.0 else 1
                val = [v / scale for v in val] if isinstance(val, list) else val / scale
                st.claims.take(*span)
                st.filters.append(FieldFilter(entity, col, op, val))
                st.trace.append(
                    TraceEntry(
                        text[min(span[0], q.start_char) : max(span[1], q.end_char)],
                        f"{entity}.{col} {op} {val}",
                    )
                )
                st.target_hint = st.target_hint or entity
                continue
            measure, span = _money_measure(text, q)
            if span:
                st.claims.take(*span)
            words = text[
                min(q.start_char, span[0]) if span else q.start_char : max(q.end_char, span[1])
                if span
                else q.end_char
            ]
            if measure == "annual_revenue":
                st.filters.append(FieldFilter("companies", "annual_revenue", op, val, q.currency))
                st.trace.append(
                    TraceEntry(words, f"companies.annual_revenue {op} {val} {q.currency or ''}".strip())
                )
            elif measure:
                st.group_filters.append(GroupFilter(measure, op, val, q.currency))
                st.trace.append(TraceEntry(words, f"company {measure} {op} {val} {q.currency or ''}".strip()))
            else:
                st.filters.append(FieldFilter("deals", "value", op, val, q.currency))
                st.trace.append(TraceEntry(words, f"deals.value {op} {val} {q.currency or ''}".strip()))
                st.target_hint = st.target_hint or "deals"

    def _numeric_column(self, text: str, q: Quantity):
        """A numeric column named right before or after an amount ("probability over 50%", "discount pct")."""
        cols = dict(self.vocab.numeric_columns)
        if not cols:
            return None
        # a custom field by the first words of its header alone ("discount" -> cf_discount_pct) when unique
        prefixes: dict[tuple[str, ...], list] = {}
        for key, col in self.vocab.numeric_columns.items():
            for n in range(1, len(key)):
                if key[0] not in ("value", "id") and len(key[0]) > 3:
                    prefixes.setdefault(key[:n], []).append(col)
        for key, found in prefixes.items():
            if len(found) == 1 and key not in cols:
                cols[key] = found[0]
        before = text[: q.start_char].split()
        after = text[q.end_char :].split()
        for n in (3, 2, 1):
            for lead in range(0, 3):  # allow "of", "is", "above" between the name and the amount
                words = (
                    before[len(before) - n - lead : len(before) - lead] if len(before) >= n + lead else None
                )
                if (
                    words
                    and tuple(w for w in words) in cols
                    and all(
                        w in ("of", "is", "at", "a", "an", "that", "was")
                        for w in before[len(before) - lead :]
                    )
                ):
                    start = text.rfind(" ".join(words), 0, q.start_char)
                    return cols[tuple(words)], (start, q.start_char)
            words = after[:n]
            if len(words) == n and tuple(words) in cols:
                end = text.find(" ".join(words), q.end_char) + len(" ".join(words))
                return cols[tuple(words)], (q.end_char, end)
        return None

    def _similarity(self, st: _State) -> None:
        text = st.text
        m = re.search(
            r"\b(?:similar to|similar with|like|resembling|resemble|resembles|lookalikes?\s+(?:of|for|to)|look like|looks like|comparable to|same as|such as|in the mold of)\s+",
            text,
        )
        if not m or not st.claims.free(m.start(), m.end()):
            return
        rest = text[m.end() :]
        words = rest.split()
        stop = {
            "in",
            "at",
            "from",
            "with",
            "who",
            "that",
            "which",
            "over",
            "under",
            "but",
            "and",
            "whose",
            "where",
            "not",
        }
        span_words = []
        for w in words:
            if w in stop:
                break
            span_words.append(w)
        if not span_words:
            return
        best = None
        for n in range(min(len(span_words), 6), 0, -1):
            key = tokens(" ".join(span_words[:n]))
            senses = [s for s in self.vocab.lookup(key) if s.kind in ("contact", "company")]
            if senses:
                pref = [s for s in senses if s.entity == st.noun_target_guess()] or senses
                best = (pref[0], n, 1.0, "exact" if pref[0].how == "exact" else "synonym")
                break
        if best is None:
            for n in range(min(len(span_words), 4), 0, -1):
                phrase = " ".join(span_words[:n])
                hit = self.vocab.fuzzy_name(phrase)
                if hit:
                    entity, rid, name, score = hit
                    best = (
                        Sense(entity[:-1] if entity == "contacts" else "company", entity, "", rid, name),
                        n,
                        score / 100,
                        "fuzzy",
                    )
                    break
        if best is None:
            st.anchor_unresolved = " ".join(span_words[:3])
            st.claims.take(m.start(), m.end())
            return
        sense, n, score, how = best
        end = m.end() + len(" ".join(span_words[:n]))
        st.claims.take(m.start(), end)
        st.similar = SimilarTo(sense.entity, sense.value, sense.label)
        st.trace.append(
            TraceEntry(text[m.start() : end], f"similar to {sense.entity} {sense.label} ({sense.value})", how)
        )
        if how == "fuzzy":
            st.confidence *= max(0.7, score - 0.05)

    def _free_text(self, st: _State) -> None:
        text = st.text
        clause = _FREE_TEXT_CLAUSE.search(text)
        if clause and st.claims.free(clause.start(), clause.end()):
            phrase = " ".join(w for w in (clause["t"] or clause["t2"]).split() if w not in ("the", "a", "an"))
            st.claims.take(clause.start(), clause.end())
            st.text_match = TextMatch(phrase)
            st.trace.append(TraceEntry(clause.group(), f"activity text mentions {phrase!r}"))
            return
        m = re.search(
            r"\b(?:mention(?:ed|s|ing)?|talked about|talking about|talk about|talks about|discussed|discussing|discuss|complained about|complaining about|complain about|asked about|asking about|asks about|raised|raising|brought up|wrote about|writing about|said|saying|says|containing|contains|contain|referencing|referenced|about|regarding|concerning|related to|re)\s+(?:the\s+)?",
            text,
        )
        if not m or not st.claims.free(m.start(), m.end()):
            return
        start = m.end()
        end = start
        for w in re.finditer(r"[^\s]+", text[start:]):
            a, b = start + w.start(), start + w.end()
            if not st.claims.free(a, b):
                break
            end = b
        words = text[start:end].split()
        while words and words[-1] in STOPWORDS:
            words.pop()
        if not words:
            return
        phrase = " ".join(words)
        end = start + len(phrase)
        st.claims.take(m.start(), end)
        st.text_match = TextMatch(phrase)
        st.trace.append(TraceEntry(text[m.start() : end], f"activity text mentions {phrase!r}"))

    def _related_absence(self, st: _State) -> None:
        """ "companies with no open deals", "accounts without contacts": a company measure equal to zero."""
        m = re.search(
            r"\b(?P<who>compan(?:y|ies)|accounts?|organi[sz]ations?|firms?|businesses)\s+(?:that\s+have\s+|having\s+|with\s+|without\s+)?"
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

    def _stage_and_score_words(self, st: _State) -> None:
        text = st.text
        for m in re.finditer(
            r"\b(?P<b>hot|warm|cold|hottest|top[- ]scored|high[- ]scoring|low[- ]scoring)\b", text
        ):
            if not st.claims.free(m.start(), m.end()):
                continue
            band = {"hottest": "hot", "top-scored": "hot", "top scored": "hot", "high-scoring": "hot", "high scoring": "hot", "low-scoring": "cold", "low scoring": "cold"}.get(m["b"], m["b"])  # fmt: skip
            st.claims.take(m.start(), m.end())
            st.score_band = band
            st.trace.append(TraceEntry(m.group(), f"score band {band}"))
        # "what did Chloe close last month": a rep's past "close" is a win (only the verb is claimed)
        for m in re.finditer(r"\b(?:did|has|have|had)\s+(?:\w+\s+){0,3}?(?P<c>close)\b(?!\s+dates?\b)", text):
            if st.claims.free(m.start("c"), m.end("c")):
                st.claims.take(m.start("c"), m.end("c"))
                st.stage_words.append((m.start("c"), "won"))
                st.trace.append(TraceEntry(m.group(), "stage won (a past 'close' is a win)"))
        rules = [
            (
                r"\b(?:closing|close|closes|expected to close|due to close|set to close|slated to close|scheduled to close)\b",
                "closing",
            ),
            (r"\b(?:closed[- ]won|won|win|wins|winning)\b", "won"),
            (r"\b(?:closed[- ]lost|lost|lose|losing|losses)\b", "lost"),
            (r"\b(?:open|active|in progress|ongoing|live|in flight)\b", "open"),
            (r"\bclosed\b", "closed"),
        ]
        for pattern, word in rules:
            for m in re.finditer(pattern, text):
                if not st.claims.free(m.start(), m.end()):
                    continue
                neg = re.search(r"\b(?:not|never|non)\s+(?:yet\s+|been\s+)?$", text[: m.start()])
                if (
                    neg
                    and word in ("won", "lost", "open", "closed")
                    and st.claims.free(neg.start(), neg.end())
                ):
                    st.claims.take(neg.start(), m.end())
                    st.negated_stages.add(word)
                    st.trace.append(TraceEntry(text[neg.start() : m.end()], f"stage not {word}"))
                    continue
                st.claims.take(m.start(), m.end())
                st.stage_words.append((m.start(), word))
                st.trace.append(TraceEntry(m.group(), {"closing": "open deals, by expected close date", "won": "stage won (closed)", "lost": "stage lost (closed)", "open": "open stages", "closed": "stage won or lost"}[word]))  # fmt: skip

    def _entity_nouns(self, st: _State) -> None:
        text = st.text
        for pattern, entity in ENTITY_NOUNS:
            for m in re.finditer(rf"\b(?:{pattern})\b", text):
                if not st.claims.free(m.start(), m.end()):
                    continue
                st.claims.take(m.start(), m.end())
                st.nouns.append((m.start(), entity, m.group()))
        st.nouns.sort()

    def _values(self, st: _State) -> None:
        words = st.claims.words()
        target = st.target()
        i = 0
        while i < len(words):
            matched = False
            for n in range(min(6, len(words) - i), 0, -1):
                run = words[i : i + n]
                # a phrase must be contiguous in the text (no claimed words inside it)
                if any(run[k + 1][0] - run[k][1] > 1 for k in range(n - 1)):
                    continue
                key = tokens(" ".join(w for _, _, w in run))
                if not key or (n == 1 and run[0][2] in STOPWORDS):
                    continue
                senses = self.vocab.lookup(key)
                if not senses:
                    continue
                self._apply_senses(st, senses, run[0][0], run[-1][1], target, "exact")
                i += n
                matched = True
                break
            if not matched:
                i += 1
        # typos: fuzzy over the small value sets, then embeddings
        words = [w for w in st.claims.words() if w[2] not in STOPWORDS and w[2] not in FIELD_WORDS]
        i = 0
        while i < len(words):
            matched = False
            for n in range(min(3, len(words) - i), 0, -1):
                run = words[i : i + n]
                if any(run[k + 1][0] - run[k][1] > 1 for k in range(n - 1)):
                    continue
                phrase = " ".join(tokens(" ".join(w for _, _, w in run)))
                hit = self.vocab.fuzzy_value(phrase)
                how = "fuzzy"
                if hit is None:
                    hit = self.vocab.embedding_value(phrase)
                    how = "embedding"
                if hit is None or not hit[0]:
                    continue
                senses, score = hit
                self._apply_senses(st, senses, run[0][0], run[-1][1], target, how)
                st.confidence *= max(0.6, score - 0.05) if how == "fuzzy" else 0.7
                i += n
                matched = True
                break
            if not matched:
                i += 1

    def _apply_senses(
        self, st: _State, senses: list[Sense], start: int, end: int, target: str, how: str
    ) -> None:
        text = st.text
        neg = _NEGATION_BEFORE.search(text[:start])
        negate = neg is not None and st.claims.free(neg.start(), neg.end())
        order = {target: 0}
        # prefer the target's own fields, then its neighbours
        rank = lambda s: (  # noqa: E731
            0 if s.how == "exact" else 1,
            order.get(s.entity, 1 if s.kind == "value" else 2),
            {"value": 0, "owner": 1, "company": 2, "contact": 3}[s.kind],
        )
        best = sorted(senses, key=rank)[0]
        chosen = st.prefer.get(text[start:end])
        picked = [s for s in senses if (s.kind, s.value) == tuple(chosen or ())]
        if picked:
            best, senses = picked[0], picked
        words = text[start:end]
        if negate:
            st.claims.take(neg.start(), neg.end())
            words = text[neg.start() : end]
        st.claims.take(start, end)
        how = how if how != "exact" else best.how
        st.value_spans.append(
            (start, end, f"{best.entity}.{best.field}" if best.kind == "value" else best.kind)
        )
        if best.kind == "value":
            st.values.append((best.entity, best.field, best.value, negate))
            meaning = f"{best.entity}.{best.field} {'!=' if negate else '='} {best.value}"
        elif best.kind == "owner":
            st.owners.append((best.value, negate))
            meaning = f"owner {'!=' if negate else '='} {best.value}"
        elif best.kind == "company":
            st.filters.append(FieldFilter("companies", "company_id", "ne" if negate else "eq", best.value))
            meaning = f"company {best.label} ({best.value})"
        else:
            st.filters.append(FieldFilter("contacts", "contact_id", "ne" if negate else "eq", best.value))
            meaning = f"contact {best.label} ({best.value})"
        ambiguous = [
            s for s in senses if rank(s)[:2] == rank(best)[:2] and s is not best and s.value != best.value
        ]
        if ambiguous:
            st.ambiguous.append((text[start:end], [(s.kind, s.value) for s in [best, *ambiguous]]))
            st.confidence *= AMBIGUOUS_CONFIDENCE
            meaning += f" (also could mean {ambiguous[0].entity}.{ambiguous[0].field}={ambiguous[0].value})"
        st.trace.append(TraceEntry(words, meaning, how))

    def _field_words(self, st: _State) -> None:
        # a column's name is filler next to a condition on that column ("lead source web"); alone it is
        # a condition we did not understand ("deals with a discount") and stays unknown
        used = {fld for _, fld, _, _ in st.values} | {f.field for f in st.filters}
        used_words = {w for fld in used for w in tokens(fld)}
        for start, end, word in st.claims.words():
            if word in FIELD_WORDS or word in used_words:
                st.claims.take(start, end)

    # ---- assembling the plan -----------------------------------------------------------------------
    def _finish(self, st: _State) -> ParseResult:
        """Plan assembly (assembly.py), then the confidence step (confidence.py)."""
        from holocrm_core.nlq.assembly import assemble

        return assemble(self, st)

    def _suggest(self, st: _State, unknown: list[str]) -> list[str]:
        """Close phrasings of the question that the parser does understand, most similar first.

        Each unknown word is replaced by vocabulary phrases spelled like it, or dropped with the filler around
        it; a candidate is offered only when it parses with every word understood."""
        from rapidfuzz import fuzz

        candidates: list[str] = []
        text = st.text
        for word in unknown:
            at = re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", text)
            if at is None:
                continue
            for phrase in self.vocab.close_phrases(word) + self._close_terms(word):
                candidates.append(text[: at.start()] + phrase + text[at.end() :])
            if word in _NEGATION_WORDS:
                continue  # a reading without the question's "not" would mean the opposite
            filler = r"(?:\b(?:in|at|from|of|for|with|the|a|an|by|named|called)\s+)*"
            after = r"(?:\s+(?:" + "|".join(sorted(FIELD_WORDS)) + r")\b)?"
            dropped = re.sub(filler + rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])" + after, " ", text)
            candidates.append(re.sub(r"\s+", " ", dropped).strip())
        if len(unknown) > 1 and not set(unknown) & _NEGATION_WORDS:  # every unknown word dropped at once
            rest = text
            for word in unknown:
                rest = re.sub(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", " ", rest)
            candidates.append(re.sub(r"\s+", " ", rest).strip())
        ranked = sorted(
            dict.fromkeys(c for c in candidates if c and c != text), key=lambda c: -fuzz.ratio(c, text)
        )
        out: list[str] = []
        self._suggesting = False  # a candidate's own parse offers no suggestions of its own
        try:
            for cand in ranked[:6]:
                if self.parse(cand, st.as_of).understood:
                    out.append(cand)
                if len(out) == 3:
                    break
        finally:
            self._suggesting = True
        return out

    def _close_terms(self, word: str, limit: int = 2) -> list[str]:
        """Semantic-layer words spelled like an unknown word ("revenu" -> revenue, "convertion" -> conversion)."""
        from rapidfuzz import fuzz, process

        if len(word) < 4:
            return []
        hits = process.extract(
            word, list(self.layer.terms()), scorer=fuzz.ratio, limit=limit, score_cutoff=75
        )
        return [h[0] for h in hits]

    def _owner_entity(self, target: str, owner: str) -> str:
        if target in ("deals", "contacts", "activities") and owner in self.vocab.categories.get(
            (target, "owner"), [owner]
        ):
            return target
        for entity in ("deals", "contacts", "activities"):
            if owner in self.vocab.categories.get((entity, "owner"), []):
                return entity
        return "deals"

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

    def _sort(self, st: _State, target: str) -> Sort:
        word = (st.sort_word or "").replace("-", " ")
        desc = word not in ("smallest", "lowest", "cheapest", "oldest", "earliest")
        if st.sort_desc is not None:
            desc = st.sort_desc
        if st.sort_key:
            is_measure, key = st.sort_key
            if key == "_recency":
                key = {"activities": "occurred_at"}.get(target, "created_at")
            if not is_measure and key == "value" and target == "companies":
                is_measure, key = True, "deal_value"
            if not is_measure and key in ("employees", "annual_revenue") and target != "companies":
                pass
            return Sort(key, desc, is_measure)
        time_col = {"activities": "occurred_at"}.get(target, "created_at")
        if word in ("oldest", "newest", "latest", "most recent", "earliest"):
            return Sort(time_col, desc, False)
        if target == "deals":
            return Sort("value", desc, False)
        if target == "companies":
            if word in ("largest", "biggest", "smallest"):
                return Sort("employees", desc, False)
            st.confidence *= 0.85
            st.trace.append(TraceEntry(word, "order by open pipeline (no order named)", "default"))
            return Sort("open_pipeline", desc, True)
        if target == "contacts" and self.has_scores.get("contacts"):
            return Sort("score", desc, False)
        st.confidence *= 0.8
        st.trace.append(TraceEntry(word, f"order by {time_col} (no order named)", "default"))
        return Sort(time_col, desc, False)


class _State:
    def __init__(self, text: str, as_of: datetime, vocab: Vocabulary):
        self.text = text
        self.as_of = as_of
        self.vocab = vocab
        self.claims = _Claims(text)
        self.trace: list[TraceEntry] = []
        self.notes: list[str] = []
        self.confidence = 1.0
        self.times: list[TimeExpr] = []
        self.used_times: set[int] = set()
        self.filters: list[FieldFilter] = []
        self.conditions: list[ActivityCondition] = []
        self.group_filters: list[GroupFilter] = []
        self.values: list[tuple[str, str, str, bool]] = []
        self.value_spans: list[tuple[int, int, str]] = []
        self.owners: list[tuple[str, bool]] = []
        self.nouns: list[tuple[int, str, str]] = []
        self.stage_words: list[tuple[int, str]] = []
        self.negated_stages: set[str] = set()
        self.score_band: str | None = None
        self.similar: SimilarTo | None = None
        self.anchor_unresolved: str | None = None
        self.text_match: TextMatch | None = None
        self.aggregate: str | None = None
        self.aggregate_field: str | None = None
        self.group: tuple[str, str] | None = None
        self.group_ranked = False
        self.implied_open = False
        self.limit: int | None = None
        self.sort_word: str | None = None
        self.sort_key: tuple[bool, str] | None = None
        self.sort_desc: bool | None = None
        self.explicit_by_at: int | None = None
        self.stuck_days: int | None = None
        self.target_hint: str | None = None
        self.relative_time = False
        self.protected: list[tuple[int, int]] = []  # vocabulary names with numbers: not amounts or dates
        self.time_cues: dict[int, str] = {}  # id(time phrase) -> the verb that dates it
        self.extra_windows: list[TimeWindow] = []  # windows on custom date columns found by meaning
        self.metric_ask: semantics.MetricAsk | None = None  # a semantic-layer metric asked for
        self.ambiguous: list[tuple[str, list[tuple[str, str]]]] = []  # words -> (kind, value) readings
        self.prefer: dict[str, tuple[str, str]] = {}  # words -> the (kind, value) the asker picked

    def noun_target_guess(self) -> str:
        """The entity of the first noun in the question (before the noun pass has run)."""
        first = None
        for pattern, entity in ENTITY_NOUNS:
            m = re.search(rf"\b(?:{pattern})\b", self.text)
            if m and (first is None or m.start() < first[0]):
                first = (m.start(), entity)
        return first[1] if first else "contacts"

    def target(self) -> str:
        if self.nouns:
            first = self.nouns[0]
            # "VPs at enterprise companies": a kind of person named before the noun is what is asked for
            for start, end, what in sorted(self.value_spans):
                if (
                    what in ("contacts.seniority", "contacts.lifecycle_status")
                    and end <= first[0]
                    and first[1] != "contacts"
                ):
                    between = self.text[end : first[0]]
                    if re.search(r"\b(?:at|in|from|of|with|working for|for)\b", between):
                        return "contacts"
            return first[1]
        if self.similar is not None:
            return self.similar.entity
        if self.target_hint:
            return self.target_hint
        if (
            self.stage_words
            or self.negated_stages
            or self.filters
            and any(f.entity == "deals" for f in self.filters)
        ):
            return "deals"
        if re.match(r"\s*(?:who|whom)\b", self.text):
            return "contacts"
        if self.values:
            return self.values[0][0]
        return "contacts"


def _contradictions(filters: list[FieldFilter]) -> list[tuple[FieldFilter, FieldFilter]]:
    """Pairs of equality / membership filters on one column whose allowed values do not overlap."""
    allowed: list[tuple[FieldFilter, set]] = []
    for f in filters:
        if f.op in ("eq", "in"):
            values = set(f.value) if isinstance(f.value, (list, tuple)) else {f.value}
            allowed.append((f, {str(v) for v in values}))
    out = []
    for i, (a, va) in enumerate(allowed):
        for b, vb in allowed[i + 1 :]:
            if (a.entity, a.field) == (b.entity, b.field) and not va & vb:
                out.append((a, b))
    return out


def _money_measure(text: str, q: Quantity) -> tuple[str | None, tuple[int, int] | None]:
    """Which company measure (or field) an amount is compared with, from the words next to it."""
    after = text[q.end_char :]
    before = text[: q.start_char]
    measures = [
        (r"(?:in\s+|of\s+)?(?:open\s+|total\s+|active\s+)?pipeline", "open_pipeline"),
        (
            r"(?:in\s+|of\s+)?(?:won\s+(?:revenue|value|deals value|business)|revenue\s+won|closed[- ]won(?:\s+revenue))",
            "won_value",
        ),
        (r"(?:in\s+|of\s+)?(?:annual\s+)?(?:revenue|turnover|sales)", "annual_revenue"),
        (r"(?:in\s+|of\s+)?(?:total\s+)?deal\s+value|in\s+deals", "deal_value"),
    ]
    for pattern, measure in measures:
        m = re.match(rf"\s*(?:{pattern})\b", after)
        if m:
            return measure, (q.end_char, q.end_char + m.end())
        m = re.search(rf"(?:{pattern})\s+(?:of\s+|is\s+|was\s+|at\s+|that\s+is\s+)?$", before)
        if m:
            return measure, (m.start(), q.start_char)
    return None, None


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _span(start, end) -> str:
    a = start.date().isoformat() if start else "..."
    b = end.date().isoformat() if end else "..."
    return f"in [{a}, {b})"
