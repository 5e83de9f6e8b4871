"""Entity -> text: what a salesperson matches on, rendered once per contact, company, deal and activity.

The text is what gets embedded and full-text indexed; its SHA-256 (``content_hash``) keys the embedding
cache, so a record whose text did not change is never embedded twice. Scalar columns beside the text
(industry, stage, owner, ...) are the filters a query can apply before ranking.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import polars as pl

from holocrm_core.schema import CUSTOM_PREFIX

# Entity types as the index and the CLI name them, and the staged table each one comes from.
ENTITY_TABLES = {"contact": "contacts", "company": "companies", "deal": "deals", "activity": "activities"}
ID_COLUMNS = {"contact": "contact_id", "company": "company_id", "deal": "deal_id", "activity": "activity_id"}

# Scalar columns every document carries (null where they do not apply), so one schema serves all types.
FILTER_COLUMNS = [
    "name",
    "industry",
    "stage",
    "owner",
    "company_id",
    "contact_id",
    "size_band",
    "lifecycle_status",
    "country",
    "activity_type",
]

DOCUMENT_SCHEMA = pl.Schema(
    {"entity_type": pl.String, "entity_id": pl.String, "text": pl.String, "content_hash": pl.String}
    | {c: pl.String for c in FILTER_COLUMNS}
)

# Recent activity is what makes "the contact who worried about pricing" findable; a few items suffice and
# keep the text within the model's 256 word-piece window.
RECENT_ACTIVITIES = 3
ACTIVITY_SNIPPET_CHARS = 240
# Custom columns a mapping marks ``metadata_only`` are staged under this prefix: kept and filterable in the
# warehouse, never pasted into the text (a case number or an internal code adds noise to the meaning).
METADATA_ONLY_PREFIX = f"{CUSTOM_PREFIX}meta_"
# Long texts (notes, activity bodies) are kept whole: full-text indexed as they are and embedded in chunks of
# about CHUNK_CHARS characters (about 200 word pieces, inside the model's 256-piece window) overlapping by
# CHUNK_OVERLAP_CHARS, so a sentence cut at a chunk border is whole in the next chunk.
CHUNK_CHARS = 900
CHUNK_OVERLAP_CHARS = 180
SNIPPET_CHARS = 240
# Custom columns a mapping marks ``metadata_only`` are staged under this prefix: kept and filterable in the
# warehouse, never pasted into the text (a case number or an internal code adds noise to the meaning).
METADATA_ONLY_PREFIX = f"{CUSTOM_PREFIX}meta_"


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _clean(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v not in (None, ""))
    if isinstance(value, float) and value != value:  # NaN
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    return " ".join(str(value).split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def chunk_spans(
    text: str, size: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP_CHARS
) -> list[tuple[int, int]]:
    """(start, end) character spans covering ``text`` in chunks of about ``size`` with ``overlap``, cut at
    spaces; one span for a text that fits. Never cuts a word unless a single word is longer than ``size``."""
    n = len(text)
    if n <= size:
        return [(0, n)]
    spans, start = [], 0
    while start < n:
        end = min(n, start + size)
        if end < n:
            space = text.rfind(" ", start + size // 2, end)
            end = space if space > start else end
        spans.append((start, end))
        if end >= n:
            break
        nxt = max(start + 1, end - overlap)
        space = text.find(" ", nxt, end)
        start = space + 1 if space >= 0 else nxt
    return spans


def snippet_of_span(text: str, span, limit: int = SNIPPET_CHARS) -> str:
    """The part of ``text`` in ``span``, at most ``limit`` characters, cut at a space, with ellipses."""
    start, end = int(span[0]), int(span[1])
    part = text[start:end].strip()
    clipped = _clip(part, limit) if len(part) > limit else part
    return (
        ("…" if start > 0 else "") + clipped + ("…" if end < len(text) and not clipped.endswith("…") else "")
    )


def snippet_in_span(text: str, span, query: str, limit: int = SNIPPET_CHARS) -> str:
    """The sentence of a matched chunk that shares most word stems with the query (a meaning match has
    few shared words, but its best sentence usually has one), else the chunk's part after the overlap."""
    import re

    start, end = int(span[0]), int(span[1])
    stems = {w[:5] for w in re.findall(r"\w{3,}", query.lower())}
    best, best_hits = None, 0
    for match in re.finditer(r"[^.!?]+[.!?]*", text[start:end]):
        words = {w[:5] for w in re.findall(r"\w{3,}", match.group().lower())}
        hits = len(stems & words)
        if hits > best_hits:
            best, best_hits = (start + match.start(), start + match.end()), hits
    if best is None:
        best = (start + CHUNK_OVERLAP_CHARS if start else start, end)
    while best[0] < end and text[best[0]] == " ":
        best = (best[0] + 1, best[1])
    return snippet_of_span(text, (best[0], min(len(text), max(best[1], best[0] + limit))), limit)


def snippet_around(text: str, query: str, limit: int = SNIPPET_CHARS) -> str | None:
    """The passage of ``text`` around the first of the query's words it contains (longest words first:
    they are the rarer ones), or None when it contains none."""
    import re

    lower = text.lower()
    for word in sorted(set(re.findall(r"\w{3,}", query.lower())), key=len, reverse=True):
        match = re.search(rf"\b{re.escape(word)}", lower)
        if match:
            start = max(0, match.start() - limit // 3)
            if start:
                space = text.find(" ", start, match.start())
                start = space + 1 if space >= 0 else start
            return snippet_of_span(text, (start, min(len(text), start + limit + 40)), limit)
    return None


def _custom_label(column: str) -> str:
    return column[len(CUSTOM_PREFIX) :].replace("_", " ")


def _lines(pairs: list[tuple[str, object]]) -> str:
    """ "Label: value" sentences, skipping empty values, so a missing field adds no noise."""
    parts = []
    for label, value in pairs:
        text = _clean(value)
        if text:
            end = "" if text[-1] in ".!?…" else "."
            parts.append(f"{label}: {text}{end}" if label else f"{text}{end}")
    return " ".join(parts)


def _custom_pairs(row: dict) -> list[tuple[str, object]]:
    return [
        (_custom_label(k), v)
        for k, v in row.items()
        if k.startswith(CUSTOM_PREFIX) and not k.startswith(METADATA_ONLY_PREFIX)
    ]


def _recent_activity_text(activities: pl.DataFrame | None, key: str) -> dict[str, str]:
    """key id -> the text of its most recent activities (subject and the start of the body)."""
    if activities is None or activities.is_empty() or key not in activities.columns:
        return {}
    cols = [c for c in ("subject", "body") if c in activities.columns]
    if not cols:
        return {}
    recent = (
        activities.filter(pl.col(key).is_not_null())
        .sort("occurred_at", descending=True, nulls_last=True)
        .group_by(key, maintain_order=True)
        .head(RECENT_ACTIVITIES)
    )
    out: dict[str, list[str]] = {}
    for row in recent.select([key, *cols]).iter_rows(named=True):
        snippet = ": ".join(_clean(row.get(c)) for c in cols if _clean(row.get(c)))
        if snippet:
            out.setdefault(row[key], []).append(_clip(snippet, ACTIVITY_SNIPPET_CHARS))
    return {k: " | ".join(v) for k, v in out.items()}


def _frame(tables: dict[str, pl.DataFrame], name: str) -> pl.DataFrame | None:
    frame = tables.get(name)
    if frame is None:
        frame = tables.get(f"staged_{name}")
    return frame


def _company_lookup(companies: pl.DataFrame | None) -> dict[str, dict]:
    if companies is None or companies.is_empty():
        return {}
    cols = [c for c in ("company_id", "name", "industry", "country") if c in companies.columns]
    return {r["company_id"]: r for r in companies.select(cols).iter_rows(named=True)}


def _contact_documents(contacts, companies_by_id, recent) -> list[dict]:
    docs = []
    for row in contacts.iter_rows(named=True):
        company = companies_by_id.get(row.get("company_id")) or {}
        name = row.get("full_name") or " ".join(p for p in (row.get("first_name"), row.get("last_name")) if p)
        text = _lines(
            [
                ("Contact", name),
                ("Title", row.get("title")),
                ("Seniority", (row.get("seniority") or "").replace("_", " ")),
                ("Company", row.get("company_name") or company.get("name")),
                ("Industry", company.get("industry")),
                ("Email", row.get("email")),
                ("Status", row.get("lifecycle_status")),
                ("Tags", row.get("tags")),
                ("Notes", _clean(row.get("notes"))),
                *_custom_pairs(row),
                ("Recent activity", recent.get(row["contact_id"])),
            ]
        )
        docs.append(
            {
                "entity_type": "contact",
                "entity_id": row["contact_id"],
                "text": text,
                "name": name or None,
                "industry": company.get("industry"),
                "owner": row.get("owner"),
                "company_id": row.get("company_id"),
                "contact_id": row["contact_id"],
                "lifecycle_status": row.get("lifecycle_status"),
                "country": company.get("country"),
            }
        )
    return docs


def _company_documents(companies, recent) -> list[dict]:
    docs = []
    for row in companies.iter_rows(named=True):
        location = ", ".join(p for p in (row.get("city"), row.get("region"), row.get("country")) if p)
        text = _lines(
            [
                ("Company", row.get("name")),
                ("Domain", row.get("domain")),
                ("Industry", row.get("industry")),
                ("Size", (row.get("size_band") or "").replace("_", " ")),
                ("Employees", row.get("employees")),
                ("Location", location),
                ("Tags", row.get("tags")),
                ("Notes", _clean(row.get("notes"))),
                *_custom_pairs(row),
                ("Recent activity", recent.get(row["company_id"])),
            ]
        )
        docs.append(
            {
                "entity_type": "company",
                "entity_id": row["company_id"],
                "text": text,
                "name": row.get("name"),
                "industry": row.get("industry"),
                "company_id": row["company_id"],
                "size_band": row.get("size_band"),
                "country": row.get("country"),
            }
        )
    return docs


def _deal_documents(deals, companies_by_id, contact_names, recent) -> list[dict]:
    docs = []
    for row in deals.iter_rows(named=True):
        company = companies_by_id.get(row.get("company_id")) or {}
        value = row.get("value")
        amount = f"{value} {row.get('currency') or ''}".strip() if value is not None else None
        text = _lines(
            [
                ("Deal", row.get("title")),
                ("Product", row.get("product")),
                ("Stage", row.get("stage")),
                ("Company", company.get("name")),
                ("Industry", company.get("industry")),
                ("Contact", contact_names.get(row.get("contact_id"))),
                ("Value", amount),
                *_custom_pairs(row),
                ("Recent activity", recent.get(row["deal_id"])),
            ]
        )
        docs.append(
            {
                "entity_type": "deal",
                "entity_id": row["deal_id"],
                "text": text,
                "name": row.get("title"),
                "industry": company.get("industry"),
                "stage": row.get("stage"),
                "owner": row.get("owner"),
                "company_id": row.get("company_id"),
                "contact_id": row.get("contact_id"),
                "country": company.get("country"),
            }
        )
    return docs


def _activity_documents(activities, companies_by_id, contact_rows) -> list[dict]:
    docs = []
    for row in activities.iter_rows(named=True):
        contact = contact_rows.get(row.get("contact_id")) or {}
        company_id = row.get("company_id") or contact.get("company_id")
        company = companies_by_id.get(company_id) or {}
        text = _lines(
            [
                ((row.get("type") or "activity").capitalize(), row.get("subject")),
                ("", _clean(row.get("body"))),
                ("With", contact.get("name")),
                ("Company", company.get("name")),
                *_custom_pairs(row),
            ]
        )
        docs.append(
            {
                "entity_type": "activity",
                "entity_id": row["activity_id"],
                "text": text,
                "name": row.get("subject"),
                "industry": company.get("industry"),
                "owner": row.get("owner"),
                "company_id": company_id,
                "contact_id": row.get("contact_id"),
                "country": company.get("country"),
                "activity_type": row.get("type"),
            }
        )
    return docs


def _only_shards(frame: pl.DataFrame | None, column: str, shards, count: int) -> pl.DataFrame | None:
    if frame is None or shards is None:
        return frame
    from holocrm_core.partitions import in_shards

    return in_shards(frame, column, shards, count)


def _about(activities: pl.DataFrame | None, key: str, owners: pl.DataFrame | None, id_column: str):
    """The activities whose ``key`` names one of ``owners``' ids (all of them when not cut to shards)."""
    if activities is None or owners is None or key not in activities.columns:
        return activities
    return activities.filter(pl.col(key).is_in(owners.get_column(id_column).implode()))


def entity_documents(
    tables: dict[str, pl.DataFrame], shards: list[int] | None = None, count: int = 1
) -> pl.DataFrame:
    """One row per contact, company, deal and activity: ``entity_type, entity_id, text, content_hash`` and
    the scalar filter columns of ``FILTER_COLUMNS``.

    ``tables`` maps entity (``contacts`` or ``staged_contacts`` ...) to its staged frame; missing entities
    are skipped. Custom ``cf_*`` attributes go into the text as "label: value".

    ``shards`` (of ``count``, ``holocrm_core.partitions.shard_of`` of each entity id): render only the
    documents of those shards. ``tables`` still hold the whole batch (a contact's document names its company
    and its recent activities, whatever their shard), but only the shard's rows are rendered, so the
    documents (the large part: one Python row and one text each) stay a shard's size; the result equals
    the whole batch's documents cut to those shards.
    """
    contacts = _frame(tables, "contacts")
    companies = _frame(tables, "companies")
    deals = _frame(tables, "deals")
    activities = _frame(tables, "activities")
    companies_by_id = _company_lookup(companies)
    own_contacts = _only_shards(contacts, "contact_id", shards, count)
    own_companies = _only_shards(companies, "company_id", shards, count)
    own_deals = _only_shards(deals, "deal_id", shards, count)
    own_activities = _only_shards(activities, "activity_id", shards, count)
    if shards is not None:
        recent_of = {
            "contact_id": _about(activities, "contact_id", own_contacts, "contact_id"),
            "company_id": _about(activities, "company_id", own_companies, "company_id"),
            "deal_id": _about(activities, "deal_id", own_deals, "deal_id"),
        }
    else:
        recent_of = dict.fromkeys(("contact_id", "company_id", "deal_id"), activities)

    contact_rows: dict[str, dict] = {}
    if contacts is not None and not contacts.is_empty():
        for r in contacts.iter_rows(named=True):
            name = r.get("full_name") or " ".join(p for p in (r.get("first_name"), r.get("last_name")) if p)
            contact_rows[r["contact_id"]] = {"name": name, "company_id": r.get("company_id")}

    docs: list[dict] = []
    if own_contacts is not None:
        recent = _recent_activity_text(recent_of["contact_id"], "contact_id")
        docs += _contact_documents(own_contacts, companies_by_id, recent)
    if own_companies is not None:
        docs += _company_documents(
            own_companies, _recent_activity_text(recent_of["company_id"], "company_id")
        )
    if own_deals is not None:
        contact_names = {k: v["name"] for k, v in contact_rows.items()}
        docs += _deal_documents(
            own_deals, companies_by_id, contact_names, _recent_activity_text(recent_of["deal_id"], "deal_id")
        )
    if own_activities is not None:
        docs += _activity_documents(own_activities, companies_by_id, contact_rows)

    if not docs:
        return pl.DataFrame(schema=DOCUMENT_SCHEMA)
    for d in docs:
        d["content_hash"] = content_hash(d["text"])
    frame = pl.DataFrame(
        docs, schema_overrides={c: pl.String for c in FILTER_COLUMNS}, infer_schema_length=None
    )
    for column in DOCUMENT_SCHEMA:
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    return frame.select(list(DOCUMENT_SCHEMA)).cast(dict(DOCUMENT_SCHEMA))
