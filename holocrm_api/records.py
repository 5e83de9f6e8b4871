"""CRM records as the routes address them: id and page-size rules, lookups that answer 404 or 503.

The body models share ``ApiBody`` (unknown fields refused, strings stripped) and the strict number types:
JSON ``true`` is not a limit of 1 and ``NaN`` is not a number here.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
)

from holocrm_api.errors import not_found
from holocrm_api.loader import Snapshot
from holocrm_core.services import RecordLabels, Refusal, ranked_pairs, rules

ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"  # CRM ids: no slashes, spaces or control characters
# The rules both doors apply (holocrm_core.services.rules), declared here in the OpenAPI.
MAX_PAGE = rules.MAX_LIMIT  # the most rows one list/search request may ask for
ENTITY_TYPES = rules.ENTITY_TYPES
ENTITY_ALIASES = rules.ENTITY_ALIASES
EntityTypeName = Literal[ENTITY_TYPES + tuple(ENTITY_ALIASES)]
SearchModeName = Literal[tuple(rules.SEARCH_MODES)]

ContactId = Annotated[str, Path(pattern=ID_PATTERN, description="The contact's CRM id")]
DealId = Annotated[str, Path(pattern=ID_PATTERN, description="The deal's CRM id")]


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a count must be a number, not true/false")
    return value


# JSON Schema counts 10.0 as an integer, so it is accepted; true is not a count.
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE), BeforeValidator(_not_a_boolean)]
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def _iso_text(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("a time must be an ISO 8601 string, e.g. 2026-10-31T12:00:00Z")  # not epoch numbers
    return value


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # CRM convention: naive times are UTC


IsoTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_utc)]


class ApiBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def entity_type_of(value: str) -> str:
    try:
        return rules.entity_type(value)
    except Refusal as exc:  # inside a pydantic validator: a ValueError becomes a 422 problem
        raise ValueError(exc.message) from None


class _Served:
    """What the services need from one snapshot, built once per snapshot (the newest one only)."""

    def __init__(self, snap: Snapshot):
        self.snap = snap
        self.labels = RecordLabels(snap.tables, precompute=True)
        self._duplicates = None
        self._lock = threading.Lock()

    def duplicates(self):
        if self._duplicates is None and self.snap.duplicates is not None:
            with self._lock:
                if self._duplicates is None:
                    self._duplicates = ranked_pairs(self.snap.duplicates)
        return self._duplicates


_served: dict[int, _Served] = {}  # id(snapshot) -> what the services need from it: the newest two
_served_lock = threading.Lock()


def served(snap: Snapshot) -> _Served:
    """Labels and ranked duplicates of this snapshot (built once per snapshot; a reload makes a new one)."""
    current = _served.get(id(snap))
    if current is None or current.snap is not snap:
        with _served_lock:
            current = _served.get(id(snap))
            if current is None or current.snap is not snap:
                current = _served[id(snap)] = _Served(snap)
                while len(_served) > 2:  # the snapshot before the previous one is no longer served
                    _served.pop(next(iter(_served)))
    return current


def warm_labels(snap: Snapshot) -> list[str]:
    """Build the label lookups of the served types now, before ``snap`` answers a request (the loader calls
    this before it swaps a snapshot in). They are built per type on first use: at 1M contacts that took
    seconds during which the async routes (similar) waited, the 7 s p99 of similar at 1M. The types are
    ``HOLOCRM_WARM_TYPES`` (the types the store holds in memory) or every type with a staged table.
    Returns the types warmed."""
    from holocrm_core.services.labels import LABEL_COLUMNS

    wanted = [t.strip() for t in os.environ.get("HOLOCRM_WARM_TYPES", "").split(",") if t.strip()]
    labels = served(snap).labels
    out = []
    for entity_type in wanted or list(LABEL_COLUMNS):
        if entity_type in LABEL_COLUMNS and LABEL_COLUMNS[entity_type][0] in snap.tables:
            labels.warm(entity_type)
            out.append(entity_type)
    return out


def warm_similar(snap: Snapshot) -> list[str]:
    """One `similar` query per entity type the store holds in memory, answered before ``snap`` serves (the
    loader's prepare step, after ``warm_labels``): the first query pays for what no later one does (code and
    pages touched the first time). Measured on the 1M server just started: 105 ms for the first query, 13 to
    30 ms for the next 14, one at a time at load 4.4. Returns the types queried."""
    from holocrm_core.services import similar_records

    store = snap.store
    if store is None:
        return []
    out = []
    for entity_type in store.in_memory():
        ids = store.entity_vectors(entity_type).ids
        if ids:
            similar_records(store, entity_type, ids[0], labels=served(snap).labels)
            out.append(entity_type)
    return out


def warm_snapshot(snap: Snapshot) -> dict[str, list[str]]:
    """The loader's prepare step: ``warm_labels``, then ``warm_similar``."""
    return {"labels": warm_labels(snap), "similar": warm_similar(snap)}


def require_contact(snap: Snapshot, contact_id: str) -> dict[str, Any]:
    snap.require("contacts")
    context = snap.contacts.get(contact_id)
    if context is None:
        raise not_found("contact", contact_id)
    return context


def require_deal(snap: Snapshot, deal_id: str) -> dict[str, Any]:
    snap.require("deals")
    deal = snap.deals.get(deal_id)
    if deal is None:
        raise not_found("deal", deal_id)
    return deal
