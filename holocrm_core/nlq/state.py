"""The parse state every pass writes to, the trace, the result, and small helpers the passes share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from holocrm_core.nlq import semantics
from holocrm_core.nlq.lexicon import ENTITY_NOUNS
from holocrm_core.nlq.money import Quantity
from holocrm_core.nlq.plan import (
    ActivityCondition,
    FieldFilter,
    GroupFilter,
    Plan,
    SimilarTo,
    TextMatch,
    TimeWindow,
)
from holocrm_core.nlq.timeparse import TimeExpr
from holocrm_core.nlq.vocabulary import Vocabulary


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
            for _start, end, what in sorted(self.value_spans):
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
