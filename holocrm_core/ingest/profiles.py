"""Source profiles: how one CRM's export files, column names and values map onto the canonical schema.

A profile knows which file holds which entity (file-name patterns, then header scoring), which header
means which canonical column (compared after :func:`normalise_header`, so "Contact ID" == "contact_id"),
the CRM's value vocabulary on top of the shared synonyms (``vocab.py``), defaults for fields the CRM does
not export, and how to derive a stable id when a file has none. Columns that map to nothing are kept as
custom attributes ``cf_<slug>``.

Built-in profiles: ``generic`` (canonical names plus common aliases), ``salesforce`` (Account, Contact,
Opportunity, Task/Event report exports), ``hubspot`` (contacts, companies, deals, engagements exports) and
``maven`` (the Maven Analytics CRM sample, see ``maven.py``). :func:`detect_profile` picks one from the
headers and file names; a user-written YAML mapping (``mapping.py``) yields a profile too.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from holocrm_core import schema
from holocrm_core.folding import ascii_fold
from holocrm_core.ingest import readers, vocab
from holocrm_core.ingest.reports import ALLOW_EMPTY, SOURCE_FILE, FileReport, RawExport, file_error_row

_HEADER = re.compile(r"[^0-9a-z]+")
_SLUG = re.compile(r"[^0-9a-z]+")
RELATED_TO = "_related_to_id"  # Salesforce "Related To ID": an Opportunity or an Account, told by id prefix


def normalise_header(header: str) -> str:
    """Comparison key of a column header: "Probability (%)" -> "probability", "Contact ID" -> "contact_id",
    "Gegründet" -> "gegrundet", "Straße" -> "strasse" (headers in any language give readable names)."""
    return _HEADER.sub("_", ascii_fold(header.strip().lstrip("\ufeff")).lower()).strip("_")


def slug(text: str) -> str:
    """Stable, readable id part from a name: "Acme Corporation" -> "acme-corporation"."""
    return _SLUG.sub("-", ascii_fold(text.strip()).lower()).strip("-")


def stable_id(prefix: str, parts: pl.DataFrame) -> pl.Series:
    """Ids derived from identifying fields: the same record gets the same id on every run and machine.

    blake2b (not polars' hash, which may change between polars versions) over the lower-cased fields;
    all-empty fields give null, which the validator reports as a missing id.
    """
    joined = parts.select(
        pl.concat_str(
            [pl.col(c).fill_null("").str.strip_chars().str.to_lowercase() for c in parts.columns],
            separator="|",
        ).alias("key")
    )["key"]
    empty = "|" * (parts.width - 1)
    return pl.Series(
        [
            None if key == empty else f"{prefix}{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"
            for key in joined.to_list()
        ],
        dtype=pl.String,
    )


ID_PREFIX = {"companies": "co_", "contacts": "ct_", "deals": "dl_", "activities": "ac_", "attachments": "at_"}
DEFAULT_ID_FROM = {
    "companies": ("name", "domain"),
    "contacts": ("email", "first_name", "last_name", "full_name", "company_name", "company_id"),
    "deals": ("title", "company_id", "contact_id", "created_at"),
    "activities": ("type", "contact_id", "deal_id", "occurred_at", "subject"),
    "attachments": ("activity_id", "file_name", "path"),
}


@dataclass
class EntitySpec:
    """How one profile recognises and maps the files of one entity."""

    file_patterns: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)  # normalised header -> canonical column
    signature: frozenset[str] = frozenset()  # normalised headers typical of this entity in this CRM
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {normalised value: canonical}
    defaults: dict[str, str] = field(default_factory=dict)  # column -> value, when the file lacks the column
    id_from: tuple[str, ...] = ()
    date_format: str | None = None
    default_currency: str | None = None
    optional: tuple[str, ...] = ()  # REQUIRED columns this source cannot fill (may stay empty)


@dataclass
class Profile:
    """A CRM's export conventions. ``read`` turns an export folder into a :class:`RawExport`."""

    name: str
    description: str
    entities: dict[str, EntitySpec]
    markers: frozenset[str] = frozenset()  # exact raw headers only this CRM writes (for detection)
    default_currency: str = "USD"
    closed_at_from_close_date: bool = False  # the CRM's one "Close Date" is the actual date once closed
    marker_files: frozenset[str] = frozenset()  # lower-case file names that identify this CRM's export
    delimiter: str | None = None
    encoding: str | None = None
    file_globs: dict[str, tuple[str, ...]] | None = None  # entity -> globs relative to the export folder

    # ------------------------------------------------------------ files and entities

    def data_files(self, export_dir: Path) -> list[Path]:
        if self.file_globs:
            found: dict[Path, None] = {}
            for globs in self.file_globs.values():
                for pattern in globs:
                    for path in sorted(export_dir.glob(pattern)):
                        if path.is_file():
                            found[path] = None
            return list(found)
        return sorted(
            p for p in export_dir.iterdir() if p.is_file() and p.suffix.lower() in readers.DATA_SUFFIXES
        )

    def entity_for(self, name: str, headers: list[str], path: Path | None = None) -> str | None:
        """Which entity a file (or sheet) holds: its glob/file name first, then its headers."""
        if self.file_globs and path is not None:
            for entity, globs in self.file_globs.items():
                if any(path.match(g) or fnmatch.fnmatch(path.name, g) for g in globs):
                    return entity
        lowered = name.lower()
        sheet = lowered.rsplit("[", 1)[-1].rstrip("]") if "[" in lowered else None
        by_name = [
            e
            for e, spec in self.entities.items()
            if any(fnmatch.fnmatch(sheet or Path(lowered).stem, p) for p in spec.file_patterns)
        ]
        if len(by_name) == 1:
            return by_name[0]
        keys = [normalise_header(h) for h in headers]
        candidates = by_name or list(self.entities)
        scores = {}
        for entity in candidates:
            spec = self.entities[entity]
            mapped = {spec.columns[k] for k in keys if k in spec.columns}
            score = sum(3 for k in keys if k in spec.signature) + len(mapped)
            if schema.ID_COLUMN[entity] in mapped:
                score += 2
            scores[entity] = score
        best = max(candidates, key=lambda e: (scores[e], -schema.STAGING_ORDER.index(e)))
        # one matching column is chance; a file must look like the entity to be taken as one
        return best if scores[best] >= 3 else None

    # ------------------------------------------------------------ reading

    def plan(self, export_dir: str | Path) -> dict[Path, str | None]:
        """The entity each data file most likely holds, from its name and header line (no records read).

        None for workbooks and JSON files (read whole: a workbook may hold several entities) and files
        whose entity cannot be told before reading them.
        """
        export_dir = Path(export_dir)
        planned: dict[Path, str | None] = {}
        for path in self.data_files(export_dir):
            if path.suffix.lower() in readers.CSV_SUFFIXES | readers.PARQUET_SUFFIXES:
                headers = readers.peek_headers(path, delimiter=self.delimiter)
                planned[path] = self.entity_for(path.name, headers, path) if headers else None
            else:
                planned[path] = None
        return planned

    def read(self, export_dir: str | Path, files: list[Path] | None = None) -> RawExport:
        """Read the export's data files (or only ``files``) into per-entity raw frames."""
        export_dir = Path(export_dir)
        if not export_dir.is_dir():
            raise FileNotFoundError(f"export folder {export_dir} does not exist")
        pieces: dict[str, list[pl.DataFrame]] = {}
        reports: list[FileReport] = []
        errors: list[dict] = []
        for path in self.data_files(export_dir) if files is None else files:
            rel = path.relative_to(export_dir).as_posix()
            try:
                sources = readers.read_source(path, delimiter=self.delimiter, encoding=self.encoding)
            except readers.UnreadableFile as exc:
                reports.append(FileReport(rel, None, self.name, 0, error=str(exc)))
                errors.append(file_error_row(rel, str(exc)))
                continue
            for name, frame in sources:
                label = rel if name == path.name else f"{rel}{name[len(path.name) :]}"
                headers = [c for c in frame.columns if c not in readers.READ_META]
                entity = self.entity_for(name, headers, path)
                if entity is None:
                    message = (
                        f"{label}: cannot tell which CRM table this file holds (columns: "
                        f"{', '.join(headers[:12])}{' ...' if len(headers) > 12 else ''}); name it after the "
                        "entity (contacts, companies, deals, activities, attachments) or describe it in a "
                        "mapping file"
                    )
                    reports.append(FileReport(label, None, self.name, frame.height, error=message))
                    errors.append(file_error_row(label, message))
                    continue
                mapped = self.map_frame(entity, frame).with_columns(pl.lit(label).alias(SOURCE_FILE))
                pieces.setdefault(entity, []).append(mapped)
                reports.append(FileReport(label, entity, self.name, frame.height))
        return assemble(pieces, reports, errors, self.name)

    def map_frame(self, entity: str, frame: pl.DataFrame) -> pl.DataFrame:
        """Rename to canonical / ``cf_`` names, apply this CRM's values, defaults and derived ids."""
        spec = self.entities[entity]
        renames: dict[str, str] = {}
        taken: set[str] = set(readers.READ_META)
        for header in frame.columns:
            if header in readers.READ_META:
                continue
            key = normalise_header(header)
            target = spec.columns.get(header.strip()) or spec.columns.get(key)
            if target is None or target in taken:
                base = (
                    key
                    if key.startswith(schema.CUSTOM_PREFIX)
                    else f"{schema.CUSTOM_PREFIX}{key or 'column'}"
                )
                target, n = base, 2
                while target in taken or target in schema.ENTITIES[entity]:
                    target, n = f"{base}_{n}", n + 1
            renames[header] = target
            taken.add(target)
        frame = frame.rename(renames)
        frame = self.prepare(entity, frame)
        return self.normalise(entity, frame)

    def prepare(self, entity: str, frame: pl.DataFrame) -> pl.DataFrame:
        """Hook for CRM-specific reshaping after renaming (e.g. Salesforce's polymorphic Related To)."""
        if RELATED_TO in frame.columns:
            related = pl.col(RELATED_TO).str.strip_chars()
            is_account = related.str.starts_with("001")
            fills = []
            if entity == "activities":
                company = pl.col("company_id") if "company_id" in frame.columns else pl.lit(None, pl.String)
                deal = pl.col("deal_id") if "deal_id" in frame.columns else pl.lit(None, pl.String)
                fills = [
                    pl.coalesce(company, pl.when(is_account).then(related)).alias("company_id"),
                    pl.coalesce(deal, pl.when(~is_account).then(related)).alias("deal_id"),
                ]
            frame = frame.with_columns(fills).drop(RELATED_TO)
        return frame

    def normalise(self, entity: str, frame: pl.DataFrame) -> pl.DataFrame:
        spec = self.entities[entity]
        entity_schema = schema.ENTITIES[entity]
        exprs = []
        for column, value in spec.defaults.items():
            if column not in frame.columns:
                exprs.append(pl.lit(value, pl.String).alias(column))
        if exprs:
            frame = frame.with_columns(exprs)
        # the CRM's own vocabulary, applied to the few distinct values, not to every row
        for column, table in spec.values.items():
            if column in frame.columns and table:
                distinct = frame[column].drop_nulls().unique().to_list()
                replace = {v: table[k] for v in distinct if (k := vocab.normalise_value(v)) in table}
                if replace:
                    frame = frame.with_columns(pl.col(column).replace(replace))
        if spec.date_format:
            exprs = []
            for column, dtype in entity_schema.items():
                if dtype == schema.UTC_TIME and column in frame.columns:
                    parsed = (
                        pl.col(column)
                        .str.strip_chars()
                        .str.strptime(pl.Datetime("us"), spec.date_format, strict=False)
                    )
                    exprs.append(
                        pl.coalesce(parsed.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"), pl.col(column)).alias(column)
                    )
            frame = frame.with_columns(exprs)
        currency = spec.default_currency or self.default_currency
        for amount, code in (("value", "currency"), ("annual_revenue", "revenue_currency")):
            if amount in entity_schema and amount in frame.columns and currency:
                present = pl.col(code) if code in frame.columns else pl.lit(None, pl.String)
                empty = present.is_null() | (present.str.strip_chars() == "")
                has_amount = pl.col(amount).is_not_null() & (pl.col(amount).str.strip_chars() != "")
                frame = frame.with_columns(
                    pl.when(empty & has_amount).then(pl.lit(currency)).otherwise(present).alias(code)
                )
        if self.closed_at_from_close_date and entity == "deals" and "expected_close_at" in frame.columns:
            frame = frame.with_columns(_closed_at_from_close_date(frame, pl.col("stage")))
        id_column = schema.ID_COLUMN[entity]
        if id_column not in frame.columns:
            fields = [c for c in (spec.id_from or DEFAULT_ID_FROM[entity]) if c in frame.columns]
            ids = (
                stable_id(ID_PREFIX[entity], frame.select(fields))
                if fields
                else pl.Series([None] * frame.height, dtype=pl.String)
            )
            frame = frame.with_columns(ids.alias(id_column))
        if spec.optional:
            frame = frame.with_columns(pl.lit(",".join(spec.optional)).alias(ALLOW_EMPTY))
        return frame


def _closed_at_from_close_date(frame: pl.DataFrame, stage: pl.Expr) -> pl.Expr:
    """Salesforce/HubSpot keep one Close Date: expected while open, actual once won or lost."""
    synonyms = vocab.enum_synonyms("deals", "stage")
    distinct = frame["stage"].drop_nulls().unique().to_list() if "stage" in frame.columns else []
    closed = [v for v in distinct if synonyms.get(vocab.normalise_value(v)) in schema.CLOSED_STAGES]
    existing = pl.col("closed_at") if "closed_at" in frame.columns else pl.lit(None, pl.String)
    return pl.coalesce(existing, pl.when(stage.is_in(closed)).then(pl.col("expected_close_at"))).alias(
        "closed_at"
    )


def assemble(
    pieces: dict[str, list[pl.DataFrame]], reports: list[FileReport], errors: list[dict], profile: str
) -> RawExport:
    tables: dict[str, pl.DataFrame] = {}
    custom: dict[str, list[str]] = {}
    for entity in schema.STAGING_ORDER:
        frames = pieces.get(entity)
        if not frames:
            continue
        table = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        tables[entity] = table
        custom[entity] = [c for c in table.columns if c.startswith(schema.CUSTOM_PREFIX)]
    return RawExport(tables=tables, files=reports, custom_fields=custom, profile=profile, file_errors=errors)


# ---------------------------------------------------------------- column vocabularies


def _aliases(table: dict[str, list[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for canonical, names in table.items():
        for name in [canonical, *names]:
            out.setdefault(normalise_header(name), canonical)
    return out


GENERIC_COLUMNS: dict[str, dict[str, list[str]]] = {
    "companies": {
        "company_id": ["id", "companyid", "account_id", "organization_id", "org_id"],
        "name": ["company_name", "company", "account_name", "organization", "organisation", "org_name"],
        "domain": ["website", "company_domain", "web_site", "url"],
        "industry": ["sector", "vertical"],
        "employees": ["employee_count", "num_employees", "number_of_employees", "headcount"],
        "size_band": ["company_size_band"],
        "annual_revenue": ["revenue", "annual_revenue_amount"],
        "revenue_currency": ["currency", "currency_code"],
        "region": ["sales_region", "territory"],
        "country": ["country_region", "country_code", "billing_country", "hq_country"],
        "city": ["billing_city", "hq_city", "town"],
        "phone": ["phone_number", "telephone", "tel", "main_phone", "company_phone", "billing_phone"],
        "address": [
            "street",
            "street_address",
            "address_1",
            "address_line_1",
            "billing_street",
            "hq_address",
        ],
        "postcode": ["zip", "zip_code", "postal_code", "post_code", "billing_postal_code", "billing_zip"],
        "parent_company_id": ["parent_id", "parent_account_id"],
        "tags": ["labels"],
        "notes": ["description", "comments"],
        "created_at": ["created", "created_date", "create_date", "date_created", "creation_date"],
    },
    "contacts": {
        "contact_id": ["id", "contactid", "person_id"],
        "first_name": ["firstname", "given_name", "first"],
        "last_name": ["lastname", "surname", "family_name", "last"],
        "full_name": ["name", "contact_name", "fullname"],
        "email": ["email_address", "e_mail", "mail"],
        "phone": ["phone_number", "telephone", "tel", "work_phone", "mobile", "mobile_phone"],
        "title": ["job_title", "position"],
        "seniority": ["job_level", "level"],
        "company_id": ["account_id", "organization_id"],
        "company_name": ["company", "account_name", "organization", "organisation"],
        "owner": ["contact_owner", "owner_name", "assigned_to"],
        "tags": ["labels"],
        "notes": ["description", "comments"],
        "lifecycle_status": ["lifecycle_stage", "lifecycle", "status", "lead_status"],
        "lead_at": [],
        "qualified_at": [],
        "customer_at": [],
        "disqualified_at": [],
        "created_at": ["created", "created_date", "create_date", "date_created"],
        "updated_at": ["updated", "last_modified", "last_modified_date", "modified_at"],
    },
    "deals": {
        "deal_id": ["id", "dealid", "opportunity_id"],
        "title": ["name", "deal_name", "opportunity_name", "deal_title"],
        "company_id": ["account_id"],
        "contact_id": ["primary_contact_id"],
        "value": ["amount", "deal_value", "close_value"],
        "currency": ["currency_code", "amount_currency"],
        "stage": ["deal_stage"],
        "probability": ["win_probability"],
        "owner": ["deal_owner", "opportunity_owner", "sales_rep"],
        "product": ["product_name"],
        "created_at": ["created", "created_date", "create_date", "date_created"],
        "stage_changed_at": ["last_stage_change_date", "stage_changed"],
        "expected_close_at": ["expected_close_date", "close_date"],
        "closed_at": ["closed_date", "actual_close_date", "date_closed"],
    },
    "activities": {
        "activity_id": ["id", "engagement_id", "task_id", "event_id"],
        "type": ["activity_type", "engagement_type"],
        "contact_id": ["who_id"],
        "deal_id": ["opportunity_id"],
        "company_id": ["account_id"],
        "occurred_at": ["date", "activity_date", "timestamp", "occurred", "datetime"],
        "direction": ["call_direction"],
        "subject": ["title"],
        "body": ["description", "content", "text", "notes", "comments"],
        "owner": ["assigned_to", "assigned", "user"],
    },
    "attachments": {
        "attachment_id": ["id", "file_id"],
        "activity_id": ["engagement_id"],
        "file_name": ["filename", "name"],
        "media_type": ["content_type", "mime_type", "mimetype"],
        "path": ["file_path", "relative_path"],
        "size_bytes": ["size", "file_size", "bytes"],
    },
}

GENERIC_FILES = {
    "companies": ("*compan*", "*account*", "*organi*"),
    "contacts": ("*contact*", "*people*", "*person*", "*lead*"),
    "deals": ("*deal*", "*opportunit*", "*pipeline*"),
    "activities": ("*activit*", "*engagement*", "*task*", "*event*", "*interaction*"),
    "attachments": ("*attachment*", "*document*"),
}

GENERIC_SIGNATURES = {
    "companies": {"domain", "industry", "employees", "annual_revenue", "size_band"},
    "contacts": {"first_name", "last_name", "email", "lifecycle_status", "full_name"},
    "deals": {"deal_id", "stage", "value", "expected_close_at", "probability"},
    "activities": {"activity_id", "occurred_at", "direction", "body"},
    "attachments": {"attachment_id", "file_name", "media_type", "size_bytes"},
}


def _spec(entity: str, extra: dict[str, list[str]] | None = None, signature=(), **kwargs) -> EntitySpec:
    table = {k: list(v) for k, v in GENERIC_COLUMNS[entity].items()}
    columns = _aliases(extra or {})  # the CRM's own names win over generic aliases
    for key, canonical in _aliases(table).items():
        columns.setdefault(key, canonical)
    return EntitySpec(
        file_patterns=GENERIC_FILES[entity],
        columns=columns,
        signature=frozenset(normalise_header(s) for s in signature) | frozenset(GENERIC_SIGNATURES[entity]),
        **kwargs,
    )


GENERIC = Profile(
    name="generic",
    description="canonical column names (holocrm_core.schema) plus common aliases; one file per entity",
    entities={entity: _spec(entity) for entity in schema.STAGING_ORDER},
)

SALESFORCE = Profile(
    name="salesforce",
    description="Salesforce report/Data Loader exports of Accounts, Contacts, Opportunities, Tasks and Events",
    entities={
        "companies": _spec(
            "companies",
            {
                "company_id": ["Account ID", "Id"],
                "name": ["Account Name"],
                "domain": ["Website"],
                "employees": ["Employees", "NumberOfEmployees"],
                "annual_revenue": ["Annual Revenue", "AnnualRevenue"],
                "revenue_currency": ["Account Currency"],
                "country": ["Billing Country", "BillingCountry"],
                "city": ["Billing City", "BillingCity"],
                "phone": ["Phone", "Account Phone"],
                "address": ["Billing Street", "BillingStreet"],
                "postcode": ["Billing Zip/Postal Code", "BillingPostalCode"],
                "parent_company_id": ["Parent Account ID", "ParentId"],
                "created_at": ["Created Date", "CreatedDate"],
                "notes": ["Description"],
            },
            signature=("Account Name", "Billing Country", "Employees", "Annual Revenue", "Website"),
        ),
        "contacts": _spec(
            "contacts",
            {
                "contact_id": ["Contact ID", "Id"],
                "company_id": ["Account ID", "AccountId"],
                "company_name": ["Account Name"],
                "owner": ["Contact Owner", "Owner Name"],
                "lifecycle_status": ["Lead Status", "Status"],
                "created_at": ["Created Date", "CreatedDate"],
                "updated_at": ["Last Modified Date", "LastModifiedDate"],
                "notes": ["Description"],
            },
            signature=("Contact ID", "First Name", "Last Name", "Email", "Mailing Country"),
            # a Contact export has no lifecycle field: a contact without one starts as a lead
            defaults={"lifecycle_status": "lead"},
        ),
        "deals": _spec(
            "deals",
            {
                "deal_id": ["Opportunity ID", "Id"],
                "title": ["Opportunity Name"],
                "company_id": ["Account ID", "AccountId"],
                "contact_id": ["Contact ID", "Primary Contact ID"],
                "value": ["Amount"],
                "currency": ["Opportunity Currency", "Amount Currency", "CurrencyIsoCode"],
                "stage": ["Stage", "StageName"],
                "probability": ["Probability (%)", "Probability"],
                "owner": ["Opportunity Owner"],
                "product": ["Product", "Product Name"],
                "created_at": ["Created Date", "CreatedDate"],
                "stage_changed_at": ["Last Stage Change Date"],
                "expected_close_at": ["Close Date", "CloseDate"],
            },
            signature=("Opportunity ID", "Opportunity Name", "Stage", "Amount", "Probability (%)"),
        ),
        "activities": _spec(
            "activities",
            {
                "activity_id": ["Activity ID", "Task ID", "Event ID", "Id"],
                "subject": ["Subject"],
                "occurred_at": ["Activity Date", "Date", "Due Date", "ActivityDate", "Start"],
                "owner": ["Assigned", "Assigned To"],
                "type": ["Type", "Task Subtype", "Event Subtype", "TaskSubtype"],
                "body": ["Description", "Comments", "Full Comments"],
                "contact_id": ["Name ID", "WhoId", "Contact ID"],
                RELATED_TO: ["Related To ID", "WhatId"],
                "company_id": ["Account ID", "AccountId"],
                "deal_id": ["Opportunity ID"],
                "direction": ["Call Type", "CallType"],
            },
            signature=("Subject", "Activity Date", "Assigned", "Related To ID", "Name ID"),
            defaults={"type": "note"},
        ),
        "attachments": _spec(
            "attachments", {"activity_id": ["Parent ID", "ParentId"], "file_name": ["Title"]}
        ),
    },
    markers=frozenset(
        {
            "Contact ID",
            "Account ID",
            "Opportunity ID",
            "Opportunity Name",
            "Account Name",
            "Probability (%)",
            "Billing Country",
            "Billing City",
            "Related To ID",
            "Name ID",
            "Opportunity Owner",
            "Lead Source",
            "Created Date",
            "Stage",
            "Employees",
            "Fiscal Period",
            "Account Owner",
            "Contact Owner",
            "Mailing Country",
            "Assigned",
            "Activity ID",
        }
    ),
    closed_at_from_close_date=True,
)

HUBSPOT = Profile(
    name="hubspot",
    description="HubSpot CRM exports of contacts, companies, deals and activities (engagements)",
    entities={
        "companies": _spec(
            "companies",
            {
                "company_id": ["Record ID", "Company ID"],
                "name": ["Company name"],
                "domain": ["Company Domain Name", "Website URL"],
                "employees": ["Number of Employees"],
                "annual_revenue": ["Annual Revenue"],
                "country": ["Country/Region"],
                "created_at": ["Create Date"],
                "notes": ["Description", "About Us"],
                "parent_company_id": ["Parent Company ID"],
            },
            signature=("Company Domain Name", "Number of Employees", "Company owner"),
        ),
        "contacts": _spec(
            "contacts",
            {
                "contact_id": ["Record ID", "Contact ID"],
                "phone": ["Phone Number"],
                "title": ["Job Title"],
                "company_id": ["Associated Company ID", "Company ID", "Associated Company IDs"],
                "company_name": ["Company Name", "Associated Company"],
                "lifecycle_status": ["Lifecycle Stage"],
                "owner": ["Contact owner"],
                "created_at": ["Create Date"],
                "updated_at": ["Last Modified Date"],
                "lead_at": ["Became a Lead Date"],
                "qualified_at": [
                    "Became a Marketing Qualified Lead Date",
                    "Became a Sales Qualified Lead Date",
                    "Became an Opportunity Date",
                ],
                "customer_at": ["Became a Customer Date"],
            },
            signature=("Lifecycle Stage", "First Name", "Last Name", "Email", "Job Title", "Phone Number"),
        ),
        "deals": _spec(
            "deals",
            {
                "deal_id": ["Record ID", "Deal ID"],
                "title": ["Deal Name"],
                "value": ["Amount"],
                "currency": ["Currency", "Deal currency code"],
                "stage": ["Deal Stage"],
                "probability": ["Deal probability"],
                "expected_close_at": ["Close Date"],
                "created_at": ["Create Date"],
                "owner": ["Deal owner"],
                "company_id": ["Associated Company ID", "Associated Company IDs"],
                "contact_id": ["Associated Contact ID", "Associated Contact IDs"],
                "stage_changed_at": ["Date entered current stage"],
            },
            signature=("Deal Name", "Deal Stage", "Deal owner", "Pipeline"),
        ),
        "activities": _spec(
            "activities",
            {
                "activity_id": ["Record ID", "Activity ID", "Engagement ID"],
                "type": ["Activity type", "Engagement type"],
                "occurred_at": ["Activity date", "Timestamp"],
                "body": ["Body", "Notes", "Email body", "Call notes"],
                "subject": ["Subject", "Title", "Email subject"],
                "contact_id": ["Associated Contact ID", "Associated Contact IDs"],
                "deal_id": ["Associated Deal ID", "Associated Deal IDs"],
                "company_id": ["Associated Company ID", "Associated Company IDs"],
                "owner": ["Activity assigned to", "Assigned to", "Owner"],
                "direction": ["Call direction", "Email direction", "Direction"],
            },
            signature=("Activity type", "Activity date", "Body"),
        ),
        "attachments": _spec("attachments", {"activity_id": ["Associated Activity ID", "Engagement ID"]}),
    },
    markers=frozenset(
        {
            "Record ID",
            "Lifecycle Stage",
            "Deal Stage",
            "Deal Name",
            "Deal owner",
            "Contact owner",
            "Company owner",
            "Associated Company ID",
            "Associated Contact ID",
            "Associated Deal ID",
            "Company Domain Name",
            "Number of Employees",
            "Phone Number",
            "Create Date",
            "Activity type",
            "Activity date",
            "Country/Region",
            "Last Activity Date",
            "Pipeline",
            "Became a Lead Date",
        }
    ),
    closed_at_from_close_date=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (GENERIC, SALESFORCE, HUBSPOT)}


def detect_profile(export_dir: str | Path) -> str:
    """The profile whose marker headers the export's files carry most (at least two), else ``generic``."""
    export_dir = Path(export_dir)
    headers: set[str] = set()
    names: set[str] = set()
    for path in GENERIC.data_files(export_dir):
        names.add(path.name.lower())
        headers.update(h.strip() for h in readers.peek_headers(path))
    scores = {name: len(headers & profile.markers) for name, profile in PROFILES.items() if profile.markers}
    for name, profile in PROFILES.items():
        if profile.marker_files and profile.marker_files <= names:
            scores[name] = scores.get(name, 0) + 10
    if scores:
        best = max(scores, key=lambda n: scores[n])
        if scores[best] >= 2:
            return best
    return "generic"
