"""CRM records as the routes address them: id and page-size rules, lookups that answer 404 or 503.

The body models share ``ApiBody`` (unknown fields refused, strings stripped) and the strict number types:
JSON ``true`` is not a limit of 1 and ``NaN`` is not a number here.
"""

from __future__ import annotations

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

ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"  # CRM ids: no slashes, spaces or control characters
MAX_PAGE = 100  # the most rows one list/search request may ask for
# Entity types as the similarity store and duplicate table name them; plurals are accepted too.
ENTITY_TYPES = ("contact", "company", "deal", "activity")
ENTITY_ALIASES = {"contacts": "contact", "companies": "company", "deals": "deal", "activities": "activity"}
EntityTypeName = Literal[ENTITY_TYPES + tuple(ENTITY_ALIASES)]

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
    name = ENTITY_ALIASES.get(value, value)
    if name not in ENTITY_TYPES:
        raise ValueError(f"unknown entity type {value!r}: use one of {', '.join(ENTITY_TYPES)}")
    return name


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
