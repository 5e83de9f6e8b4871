"""Canonical CRM tables: the one shape every export is turned into and every later step reads.

Each table is a polars schema. Money is a Decimal amount plus an ISO-4217 currency code; times are
timezone-aware UTC; tags are a list of strings. Columns an export carries that map to no canonical field are
kept beside these as typed custom attributes named ``cf_<slug>`` (see ``CUSTOM_PREFIX``).

The generic export format (the sample export, the ``generic`` ingest profile) uses exactly these column
names, one CSV/JSON/Parquet/XLSX file per entity (``contacts.csv``, ``companies.csv`` ...), tags joined
by ``;``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")
MONEY = pl.Decimal(18, 2)
TAGS = pl.List(pl.String)
CUSTOM_PREFIX = "cf_"


class DealStage(StrEnum):
    PROSPECTING = "prospecting"
    QUALIFICATION = "qualification"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"

    @property
    def is_closed(self) -> bool:
        return self in (DealStage.WON, DealStage.LOST)


OPEN_STAGES = [s.value for s in DealStage if not s.is_closed]
CLOSED_STAGES = [DealStage.WON.value, DealStage.LOST.value]


class LifecycleStatus(StrEnum):
    """Lead lifecycle of a contact; the date of each change is a ``<status>_at`` column."""

    LEAD = "lead"
    QUALIFIED = "qualified"
    CUSTOMER = "customer"
    DISQUALIFIED = "disqualified"


class ActivityType(StrEnum):
    EMAIL = "email"
    CALL = "call"
    MEETING = "meeting"
    NOTE = "note"
    PROPOSAL = "proposal"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Seniority(StrEnum):
    C_LEVEL = "c_level"
    VP = "vp"
    DIRECTOR = "director"
    MANAGER = "manager"
    INDIVIDUAL = "individual"


class SizeBand(StrEnum):
    """Company size by employees: smb < 200 <= mid_market < 1000 <= enterprise."""

    SMB = "smb"
    MID_MARKET = "mid_market"
    ENTERPRISE = "enterprise"


def size_band_for(employees: int | None) -> str | None:
    if employees is None:
        return None
    if employees >= 1000:
        return SizeBand.ENTERPRISE.value
    if employees >= 200:
        return SizeBand.MID_MARKET.value
    return SizeBand.SMB.value


COMPANIES = pl.Schema(
    {
        "company_id": pl.String,
        "name": pl.String,
        "domain": pl.String,
        "industry": pl.String,
        "employees": pl.Int64,
        "size_band": pl.String,  # SizeBand
        "annual_revenue": MONEY,
        "revenue_currency": pl.String,
        "region": pl.String,
        "country": pl.String,
        "city": pl.String,
        # identifying fields for duplicate detection (semantic domain): phone in E.164 where it parses
        "phone": pl.String,
        "address": pl.String,
        "postcode": pl.String,
        "parent_company_id": pl.String,
        "tags": TAGS,
        "notes": pl.String,
        "created_at": UTC_TIME,
    }
)

CONTACTS = pl.Schema(
    {
        "contact_id": pl.String,
        "first_name": pl.String,
        "last_name": pl.String,
        "full_name": pl.String,
        "email": pl.String,
        "phone": pl.String,  # E.164 where it could be parsed
        "title": pl.String,
        "seniority": pl.String,  # Seniority
        "company_id": pl.String,
        "company_name": pl.String,
        "owner": pl.String,
        "tags": TAGS,
        "notes": pl.String,
        "lifecycle_status": pl.String,  # LifecycleStatus
        "lead_at": UTC_TIME,
        "qualified_at": UTC_TIME,
        "customer_at": UTC_TIME,
        "disqualified_at": UTC_TIME,
        "created_at": UTC_TIME,
        "updated_at": UTC_TIME,
    }
)

DEALS = pl.Schema(
    {
        "deal_id": pl.String,
        "title": pl.String,
        "company_id": pl.String,
        "contact_id": pl.String,
        "value": MONEY,
        "currency": pl.String,
        "stage": pl.String,  # DealStage
        "probability": pl.Float64,  # 0..1, the CRM's own
        "owner": pl.String,
        "product": pl.String,
        "created_at": UTC_TIME,
        "stage_changed_at": UTC_TIME,
        "expected_close_at": UTC_TIME,
        "closed_at": UTC_TIME,
    }
)

ACTIVITIES = pl.Schema(
    {
        "activity_id": pl.String,
        "type": pl.String,  # ActivityType
        "contact_id": pl.String,
        "deal_id": pl.String,
        "company_id": pl.String,
        "occurred_at": UTC_TIME,
        "direction": pl.String,  # Direction
        "subject": pl.String,
        "body": pl.String,
        "owner": pl.String,
    }
)

ATTACHMENTS = pl.Schema(
    {
        "attachment_id": pl.String,
        "activity_id": pl.String,
        "file_name": pl.String,
        "media_type": pl.String,
        "path": pl.String,  # relative to the export folder
        "size_bytes": pl.Int64,
    }
)

QUARANTINE = pl.Schema(
    {
        "entity": pl.String,
        "source_file": pl.String,
        "line": pl.Int64,  # 1-based line/record number in the source file; header is line 1 for CSV
        "record_id": pl.String,
        "column": pl.String,
        "value": pl.String,
        # machine code: required, email, phone, date, money, currency, number, enum, duplicate_id, reference,
        # file, malformed (a CSV record with the wrong number of fields or an unterminated quote; value: its
        # text as written)
        "rule": pl.String,
        "reason": pl.String,  # sentence a person can act on
    }
)

ACTION_LOG = pl.Schema(
    {
        "action_id": pl.String,
        "contact_id": pl.String,
        "deal_id": pl.String,
        "action": pl.String,  # email, call, proposal, wait
        "context": pl.String,  # JSON of the context features at decision time
        "propensity": pl.Float64,
        "policy": pl.String,
        "taken_at": UTC_TIME,
        "reward": pl.Float64,
        "observed_at": UTC_TIME,
    }
)


@dataclass(frozen=True)
class Entity:
    """One kind of CRM record and every name it goes by: the one place these facts are written.

    ``name`` is the singular the product speaks (API paths, entity_type columns, model names), ``plural`` the
    export file stem and canonical table name, ``id_column`` its stable key, ``staged_asset`` / ``raw_asset``
    the Dagster asset and warehouse table names, ``text_renderer`` the key of its entity -> text renderer
    (None when the entity has no document of its own).
    """

    name: str
    plural: str
    id_column: str
    columns: pl.Schema = field(repr=False)
    text_renderer: str | None

    @property
    def table(self) -> str:
        """The canonical table name (``schema.ENTITIES`` key, export file stem)."""
        return self.plural

    @property
    def staged_asset(self) -> str:
        return f"staged_{self.plural}"

    @property
    def raw_asset(self) -> str:
        return f"raw_{self.plural}"

    @property
    def quarantine_table(self) -> str:
        return f"quarantine_{self.plural}"


COMPANY = Entity("company", "companies", "company_id", COMPANIES, "company")
CONTACT = Entity("contact", "contacts", "contact_id", CONTACTS, "contact")
DEAL = Entity("deal", "deals", "deal_id", DEALS, "deal")
ACTIVITY = Entity("activity", "activities", "activity_id", ACTIVITIES, "activity")
ATTACHMENT = Entity("attachment", "attachments", "attachment_id", ATTACHMENTS, None)

# Staging order: referenced tables first.
REGISTRY: tuple[Entity, ...] = (COMPANY, CONTACT, DEAL, ACTIVITY, ATTACHMENT)
_BY_NAME: dict[str, Entity] = {**{e.name: e for e in REGISTRY}, **{e.plural: e for e in REGISTRY}}


def entity(name_or_plural: str) -> Entity:
    """The registry entry for "contact" or "contacts" (case-insensitive); a clear ValueError otherwise."""
    found = _BY_NAME.get(str(name_or_plural).strip().lower())
    if found is None:
        valid = ", ".join(f"{e.name}/{e.plural}" for e in REGISTRY)
        raise ValueError(f"unknown entity {name_or_plural!r}: use one of {valid}")
    return found


# Entities that have a text document (similarity search, duplicates), in registry order.
DOCUMENT_ENTITIES: tuple[Entity, ...] = tuple(e for e in REGISTRY if e.text_renderer)
# The CRM records proper (attachments are files hanging off activities): what scoring, NL questions and the
# semantic layer read.
RECORDS: tuple[Entity, ...] = (COMPANY, CONTACT, DEAL, ACTIVITY)
RECORD_STAGED_TABLES: tuple[str, ...] = tuple(e.staged_asset for e in RECORDS)

ENTITIES: dict[str, pl.Schema] = {e.plural: e.columns for e in REGISTRY}
ID_COLUMN: dict[str, str] = {e.plural: e.id_column for e in REGISTRY}
SINGULAR: dict[str, str] = {e.plural: e.name for e in REGISTRY}
STAGED_TABLES: tuple[str, ...] = tuple(e.staged_asset for e in REGISTRY)

REQUIRED = {
    "companies": ["company_id", "name"],
    "contacts": ["contact_id", "lifecycle_status", "created_at"],
    "deals": ["deal_id", "title", "stage", "created_at"],
    "activities": ["activity_id", "type", "contact_id", "occurred_at"],
    "attachments": ["attachment_id", "activity_id", "file_name"],
}

# Required columns an export may lack altogether, and the value they then take (with a warning count):
# a contact without a lifecycle status is a lead. Any other required column missing from a whole file is
# one clear error (holocrm_core.ingest.MissingColumnError), not a quarantine of every row.
DEFAULT_WHEN_ABSENT: dict[tuple[str, str], str] = {
    ("contacts", "lifecycle_status"): LifecycleStatus.LEAD.value,
}

# (entity, column) -> (referenced entity). A value that is present must exist in the referenced table.
REFERENCES = {
    ("companies", "parent_company_id"): "companies",
    ("contacts", "company_id"): "companies",
    ("deals", "company_id"): "companies",
    ("deals", "contact_id"): "contacts",
    ("activities", "contact_id"): "contacts",
    ("activities", "deal_id"): "deals",
    ("activities", "company_id"): "companies",
    ("attachments", "activity_id"): "activities",
}

# Columns a usable export fills most of the time: (entity -> column -> highest acceptable null rate).
# Required columns are never null; other canonical columns are optional and may be empty.
NULL_RATE_LIMITS = {
    "companies": {"industry": 0.5, "domain": 0.8},
    "contacts": {"full_name": 0.2, "email": 0.5, "company_id": 0.5},
    "deals": {"value": 0.5, "owner": 0.5, "currency": 0.5},
    "activities": {"body": 0.8},
    "attachments": {"media_type": 0.5},
}

# Order in which entities are staged so that referenced tables exist first.
STAGING_ORDER = [e.plural for e in REGISTRY]

ENUMS: dict[tuple[str, str], type[StrEnum]] = {
    ("companies", "size_band"): SizeBand,
    ("contacts", "seniority"): Seniority,
    ("contacts", "lifecycle_status"): LifecycleStatus,
    ("deals", "stage"): DealStage,
    ("activities", "type"): ActivityType,
    ("activities", "direction"): Direction,
}


def custom_columns(frame: pl.DataFrame) -> list[str]:
    """The custom attributes an export carried for this entity (columns ``cf_*``)."""
    return [c for c in frame.columns if c.startswith(CUSTOM_PREFIX)]


def empty(entity: str) -> pl.DataFrame:
    return pl.DataFrame(schema=ENTITIES[entity])
