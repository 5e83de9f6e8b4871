"""User-written YAML mapping files: describe your own CRM export without writing code.

Format (every key except ``entities`` is optional)::

    name: acme_legacy_crm          # shown as the profile in reports (default: mapping:<file stem>)
    base: generic                  # profile whose aliases/vocabularies also apply (generic, salesforce,
                                   # hubspot; "none" to use only what is written here). Default generic.
    default_currency: EUR          # currency of amounts that carry none (default USD)
    date_format: "%d/%m/%Y"        # strftime format tried first for every date column
    delimiter: ";"                 # CSV delimiter (sniffed when absent)
    encoding: cp1252               # text encoding (detected when absent)
    entities:
      contacts:                    # companies | contacts | deals | activities | attachments
        files: "people*.csv"       # glob (or list of globs) relative to the export folder
        columns:                   # source header -> canonical column (see holocrm_core/schema.py) or a
          Kundennr: contact_id     # custom field cf_<name>; unlisted headers go through the base profile,
                                   # else become cf_<slug>
          Vorname: first_name
          Status: lifecycle_status
        values:                    # per canonical enum column: source value -> canonical value
          lifecycle_status: {Interessent: lead, Kunde: customer, Verloren: disqualified}
        date_format: "%d.%m.%Y"    # overrides the top-level one for this entity
        default_currency: EUR
        defaults: {owner: "Sales team"}   # value for a canonical column the files do not have
        id_from: [email]           # fields hashed into a stable id when the files have no id column
        optional: [created_at]     # REQUIRED columns this source cannot fill (left empty, not quarantined)
        exclude: [Tags, "Lead Quality"]   # source headers never read (e.g. fields known to leak an outcome)
        status_dates:              # status -> source header that dates it, for rows in that status only
          customer: "Last Activity Date"  # contacts: lead, qualified, customer, disqualified (-> <status>_at)
          disqualified: "Last Activity Date"  # deals: won, lost (-> closed_at)
        metadata_only: [Case Number]   # headers kept as typed cf_meta_<slug> columns (filterable in the
                                   # warehouse), never pasted into the text that is embedded and indexed

Source values are compared after normalisation (case, spaces, underscores, hyphens ignored). Scalars are
read as the words written: an unquoted ``yes:``/``no:``/``on:`` key is the word, not a YAML boolean. A
won or lost deal's "Close Date" is its ``closed_at`` (an open deal's is its ``expected_close_at``). An
example lives in tests/fixtures/ingest/custom_mapped/mapping.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from holocrm_core import schema
from holocrm_core.ingest import vocab
from holocrm_core.ingest.profiles import PROFILES, EntitySpec, Profile, normalise_header
from holocrm_core.text import METADATA_ONLY_PREFIX


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


class _WordsLoader(yaml.SafeLoader):
    """YAML without implicit booleans: ``yes``, ``no``, ``on``, ``off`` stay the words the user typed."""


_WordsLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

# Which canonical date column a status is dated by.
STATUS_COLUMN = {"contacts": "lifecycle_status", "deals": "stage"}
STATUS_DATE_COLUMN = {
    "contacts": {
        "lead": "lead_at",
        "qualified": "qualified_at",
        "customer": "customer_at",
        "disqualified": "disqualified_at",
    },
    "deals": {"won": "closed_at", "lost": "closed_at"},
}


@dataclass
class MappingProfile(Profile):
    """A profile from a mapping file, with its per-entity ``exclude:`` and ``status_dates:`` rules."""

    excluded: dict[str, frozenset[str]] = field(default_factory=dict)  # entity -> normalised headers
    status_dates: dict[str, dict[str, str]] = field(default_factory=dict)  # entity -> {status: header}

    def map_frame(self, entity: str, frame: pl.DataFrame) -> pl.DataFrame:
        excluded = self.excluded.get(entity, frozenset())
        if excluded:
            frame = frame.drop([h for h in frame.columns if normalise_header(h) in excluded])
        dating = {
            status: frame[header]
            for status, header in self.status_dates.get(entity, {}).items()
            if header in frame.columns
        }
        mapped = super().map_frame(entity, frame)
        return _date_statuses(entity, mapped, dating, self.entities[entity]) if dating else mapped


def _date_statuses(
    entity: str, frame: pl.DataFrame, dating: dict[str, pl.Series], spec: EntitySpec
) -> pl.DataFrame:
    """Rows in a status take that status's date from its own column (the row's other dates stay)."""
    status_column = STATUS_COLUMN[entity]
    if status_column not in frame.columns:
        return frame
    synonyms = vocab.enum_synonyms(entity, status_column) | spec.values.get(status_column, {})
    status = frame[status_column].map_elements(
        lambda v: synonyms.get(vocab.normalise_value(v), v), return_dtype=pl.String, skip_nulls=True
    )
    exprs = {}
    for state, source in dating.items():
        target = STATUS_DATE_COLUMN[entity][state]
        text = source.cast(pl.String).str.strip_chars()
        if spec.date_format:
            parsed = text.str.strptime(pl.Datetime("us"), spec.date_format, strict=False)
            text = pl.select(pl.coalesce(parsed.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"), text)).to_series()
        current = exprs.get(target, frame[target] if target in frame.columns else pl.lit(None, pl.String))
        exprs[target] = pl.when(pl.lit(status) == state).then(pl.lit(text)).otherwise(current)
    return frame.with_columns([expr.alias(name) for name, expr in exprs.items()])


def load_mapping(path: str | Path) -> Profile:
    """A :class:`Profile` built from a YAML mapping file (format in this module's docstring)."""
    path = Path(path)
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_WordsLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"mapping file {path}: cannot be read ({exc})") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("entities"), dict):
        raise MappingError(
            f"mapping file {path}: needs an 'entities:' section (see holocrm_core.ingest.mapping)"
        )
    base_name = str(spec.get("base", "generic"))
    if base_name != "none" and base_name not in PROFILES:
        raise MappingError(
            f"mapping file {path}: base {base_name!r} is not one of {', '.join(sorted(PROFILES))}, none"
        )
    base = PROFILES.get(base_name) if base_name != "none" else None
    top_date = spec.get("date_format")
    top_currency = spec.get("default_currency")
    entities: dict[str, EntitySpec] = {}
    excluded: dict[str, frozenset[str]] = {}
    status_dates: dict[str, dict[str, str]] = {}
    globs: dict[str, tuple[str, ...]] = {}
    for entity, body in spec["entities"].items():
        if entity not in schema.ENTITIES:
            raise MappingError(
                f"mapping file {path}: unknown entity {entity!r} (use {', '.join(schema.STAGING_ORDER)})"
            )
        body = body or {}
        files = body.get("files") or body.get("file")
        if not files:
            raise MappingError(
                f"mapping file {path}: entities.{entity} needs 'files:' (a glob such as '{entity}*.csv')"
            )
        globs[entity] = tuple([files] if isinstance(files, str) else files)
        columns: dict[str, str] = {}
        for header, canonical in (body.get("columns") or {}).items():
            canonical = str(canonical)
            if canonical not in schema.ENTITIES[entity] and not canonical.startswith(schema.CUSTOM_PREFIX):
                raise MappingError(
                    f"mapping file {path}: entities.{entity}.columns maps {header!r} to {canonical!r}, which is not "
                    f"a {entity} column ({', '.join(schema.ENTITIES[entity])}) nor a custom field (cf_<name>)"
                )
            columns[str(header).strip()] = canonical
            columns.setdefault(normalise_header(str(header)), canonical)
        for header in body.get("metadata_only") or []:  # kept and typed, never embedded or full-text indexed
            target = f"{METADATA_ONLY_PREFIX}{normalise_header(str(header))}"
            columns[str(header).strip()] = target
            columns.setdefault(normalise_header(str(header)), target)
        base_spec = base.entities[entity] if base else EntitySpec()
        for key, canonical in base_spec.columns.items():
            columns.setdefault(key, canonical)
        values = {}
        for column, table in (body.get("values") or {}).items():
            if (entity, column) not in schema.ENUMS:
                raise MappingError(
                    f"mapping file {path}: entities.{entity}.values.{column}: {column} is not an enum column"
                )
            allowed = {m.value for m in schema.ENUMS[(entity, column)]}
            for source, target in table.items():
                if target not in allowed:
                    raise MappingError(
                        f"mapping file {path}: entities.{entity}.values.{column} maps {source!r} to {target!r}; "
                        f"use one of {', '.join(sorted(allowed))}"
                    )
            values[column] = {vocab.normalise_value(str(k)): v for k, v in table.items()}
        excluded[entity] = frozenset(normalise_header(str(h)) for h in body.get("exclude") or ())
        dates = body.get("status_dates") or {}
        if dates and entity not in STATUS_DATE_COLUMN:
            raise MappingError(
                f"mapping file {path}: entities.{entity}.status_dates: only contacts and deals have statuses"
            )
        for state in dates:
            if state not in STATUS_DATE_COLUMN.get(entity, {}):
                raise MappingError(
                    f"mapping file {path}: entities.{entity}.status_dates: {state!r} is not a status that has a "
                    f"date; use one of {', '.join(STATUS_DATE_COLUMN[entity])}"
                )
        status_dates[entity] = {str(k): str(v) for k, v in dates.items()}
        entities[entity] = EntitySpec(
            file_patterns=(),
            columns=columns,
            signature=base_spec.signature,
            values=values,
            defaults={k: str(v) for k, v in (body.get("defaults") or {}).items()},
            id_from=tuple(body.get("id_from") or ()),
            date_format=body.get("date_format") or top_date,
            default_currency=body.get("default_currency") or top_currency,
            optional=tuple(body.get("optional") or ()),
        )
    return MappingProfile(
        name=str(spec.get("name") or f"mapping:{path.stem}"),
        description=f"YAML mapping {path.name}",
        entities=entities,
        default_currency=str(top_currency or (base.default_currency if base else "USD")),
        # A won or lost deal's Close Date is when it closed, whatever the base profile assumes.
        closed_at_from_close_date=True,
        delimiter=spec.get("delimiter"),
        encoding=spec.get("encoding"),
        file_globs=globs,
        excluded=excluded,
        status_dates=status_dates,
    )


__all__ = ["MappingError", "MappingProfile", "load_mapping"]
