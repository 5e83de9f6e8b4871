"""The typed plan of a natural-language question: plain data that the executor turns into polars expressions.

A plan never holds code or query text: every part is a frozen dataclass whose fields are entity names,
column names, operator names from a closed set and literal values. The executor checks each name against the
schema before it builds an expression, so a question cannot be talked into reading or running anything else.
A plan renders as JSON (``to_json``) and in words (``to_words``), which is what the user sees as the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

ENTITIES = ("contacts", "companies", "deals", "activities")

# The closed set of comparison operators a filter may carry.
OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_null", "not_null")

# Company-level measures over deals / contacts / activities ("pipeline over $100k" = open_pipeline > 100000).
MEASURES = (
    "open_pipeline",
    "won_value",
    "lost_value",
    "deal_value",
    "deal_count",
    "open_deal_count",
    "won_deal_count",
    "lost_deal_count",
    "contact_count",
    "activity_count",
)

AGGREGATES = ("count", "sum", "avg", "min", "max")

_OP_WORDS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "gt": "over",
    "gte": "at least",
    "lt": "under",
    "lte": "at most",
    "between": "between",
    "is_null": "is empty",
    "not_null": "is set",
}

_MEASURE_WORDS = {
    "open_pipeline": "open pipeline (sum of open deal values)",
    "won_value": "won value (sum of won deal values)",
    "lost_value": "lost value (sum of lost deal values)",
    "deal_value": "total deal value",
    "deal_count": "number of deals",
    "open_deal_count": "number of open deals",
    "won_deal_count": "number of won deals",
    "lost_deal_count": "number of lost deals",
    "contact_count": "number of contacts",
    "activity_count": "number of activities",
}


@dataclass(frozen=True)
class FieldFilter:
    """`entity.field op value`; on another entity than the target it means "linked to such a record"."""

    entity: str
    field: str
    op: str
    value: Any = None
    currency: str | None = None  # money filters: only amounts in this ISO currency are compared

    def words(self) -> str:
        value = self.value
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        money = f" {self.currency}" if self.currency else ""
        if self.op in ("is_null", "not_null"):
            return f"{self.entity}.{self.field} {_OP_WORDS[self.op]}"
        return f"{self.entity}.{self.field} {_OP_WORDS[self.op]} {value}{money}"


@dataclass(frozen=True)
class TimeWindow:
    """`entity.field` within [start, end) (either bound may be open); `phrase` is the words it came from."""

    entity: str
    field: str
    start: datetime | None
    end: datetime | None
    phrase: str = ""

    def words(self) -> str:
        return f"{self.entity}.{self.field} {_span_words(self.start, self.end)} ({self.phrase!r})"


@dataclass(frozen=True)
class ActivityCondition:
    """Presence (`exists`) or absence of activities of some types, optionally within a time window."""

    exists: bool
    types: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    phrase: str = ""

    def words(self) -> str:
        kinds = " or ".join(self.types) if self.types else "any"
        when = "" if self.start is None and self.end is None else f" {_span_words(self.start, self.end)}"
        verb = "has" if self.exists else "has no"
        return f"{verb} {kinds} activity{when} ({self.phrase!r})"


@dataclass(frozen=True)
class GroupFilter:
    """A per-company measure compared to a value: "pipeline over $100k" = open_pipeline gt 100000 USD."""

    measure: str
    op: str
    value: Any
    currency: str | None = None

    def words(self) -> str:
        money = f" {self.currency}" if self.currency else ""
        return f"company's {_MEASURE_WORDS[self.measure]} {_OP_WORDS[self.op]} {self.value}{money}"


@dataclass(frozen=True)
class ScoreBand:
    """Rows whose learned score falls in a band ("hot" = the top band), read from a scored_* table."""

    entity: str
    band: str

    def words(self) -> str:
        return f"{self.entity} scored {self.band}"


@dataclass(frozen=True)
class Aggregate:
    """count / sum / avg / min / max of a field, optionally per group (`group_by` = entity.field)."""

    func: str
    field: str | None = None
    group_entity: str | None = None
    group_field: str | None = None

    def words(self) -> str:
        what = "number of rows" if self.func == "count" else f"{self.func} of {self.field}"
        per = f" per {self.group_entity}.{self.group_field}" if self.group_field else ""
        return what + per


@dataclass(frozen=True)
class Sort:
    """Order by a field of the target or by a company measure; ties broken by id so answers are stable."""

    key: str
    descending: bool = True
    measure: bool = False

    def words(self) -> str:
        key = _MEASURE_WORDS.get(self.key, self.key) if self.measure else self.key
        return f"sorted by {key} {'descending' if self.descending else 'ascending'}"


@dataclass(frozen=True)
class SimilarTo:
    """Similarity anchor: records like this one (resolved from a name in the vocabulary)."""

    entity: str
    entity_id: str
    name: str

    def words(self) -> str:
        return f"similar to {self.name} ({self.entity} {self.entity_id})"


@dataclass(frozen=True)
class TextMatch:
    """Free-text part matched against activity texts (semantic index when present, keywords otherwise)."""

    text: str

    def words(self) -> str:
        return f"activities mention {self.text!r}"


@dataclass(frozen=True)
class GroupKey:
    """A dimension an answer is broken down by: `entity.field` ("*" = the target's own), a date column
    bucketed by `grain` (quarter, month, year) when given."""

    entity: str
    field: str
    grain: str | None = None

    def words(self) -> str:
        return f"{self.entity}.{self.field}" + (f" by {self.grain}" if self.grain else "")


@dataclass(frozen=True)
class MetricQuery:
    """A semantic-layer metric computed over the plan's rows (holocrm_core.metrics), per group when given,
    the groups ranked by it (`limit` of them, largest first unless `ascending`)."""

    name: str
    label: str
    groups: tuple[GroupKey, ...] = ()
    ascending: bool = False
    description: str = (
        ""  # the layer's definition, shown with the plan ("sum of open deal values, per currency")
    )

    def words(self) -> str:
        per = " per " + ", ".join(g.words() for g in self.groups) if self.groups else ""
        what = f" ({self.description})" if self.description else ""
        return f"{self.label}{what}{per}"


@dataclass(frozen=True)
class Plan:
    target: str
    filters: tuple[FieldFilter, ...] = ()
    windows: tuple[TimeWindow, ...] = ()
    activity_conditions: tuple[ActivityCondition, ...] = ()
    group_filters: tuple[GroupFilter, ...] = ()
    score_bands: tuple[ScoreBand, ...] = ()
    aggregate: Aggregate | None = None
    sort: Sort | None = None
    limit: int | None = None
    similar_to: SimilarTo | None = None
    text: TextMatch | None = None
    as_of: datetime | None = None
    confidence: float = 1.0
    metric: MetricQuery | None = None

    def to_json(self) -> dict:
        return _jsonable(self)

    def to_words(self) -> str:
        head = self.target
        if self.aggregate is not None:
            head = f"{self.aggregate.words()} of {self.target}"
        if self.metric is not None:
            head = f"{self.metric.words()} of {self.target}"
        # a negated condition on a linked record reads as its absence: "not linked to a healthcare company"
        parts = [
            f"no linked {p.entity} where {FieldFilter(p.entity, p.field, 'eq' if p.op == 'ne' else 'in', p.value).words()}"
            if p.entity != self.target and p.op in ("ne", "not_in")
            else p.words()
            for p in self.filters
        ]
        parts += [w.words() for w in self.windows]
        parts += [c.words() for c in self.activity_conditions]
        parts += [g.words() for g in self.group_filters]
        parts += [s.words() for s in self.score_bands]
        if self.similar_to is not None:
            parts.append(self.similar_to.words())
        if self.text is not None:
            parts.append(self.text.words())
        words = head + (" where " + " and ".join(parts) if parts else "")
        if self.sort is not None:
            words += f", {self.sort.words()}"
        if self.limit is not None:
            words += f", first {self.limit}"
        if self.as_of is not None:
            words += f" (as of {self.as_of.date().isoformat()})"
        return words


def _span_words(start: datetime | None, end: datetime | None) -> str:
    if start is not None and end is not None:
        return f"from {start.date().isoformat()} up to {end.date().isoformat()}"
    if start is not None:
        return f"on or after {start.date().isoformat()}"
    if end is not None:
        return f"before {end.date().isoformat()}"
    return "at any time"


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


__all__ = [
    "AGGREGATES",
    "ENTITIES",
    "MEASURES",
    "OPERATORS",
    "ActivityCondition",
    "Aggregate",
    "FieldFilter",
    "GroupFilter",
    "GroupKey",
    "MetricQuery",
    "Plan",
    "ScoreBand",
    "SimilarTo",
    "Sort",
    "TextMatch",
    "TimeWindow",
]
