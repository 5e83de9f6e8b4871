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
        columns:                   # source header -> canonical column (see holocrm_core/schema.py);
          Kundennr: contact_id     # unlisted headers go through the base profile, else become cf_<slug>
          Vorname: first_name
          Status: lifecycle_status
        values:                    # per canonical enum column: source value -> canonical value
          lifecycle_status: {Interessent: lead, Kunde: customer, Verloren: disqualified}
        date_format: "%d.%m.%Y"    # overrides the top-level one for this entity
        default_currency: EUR
        defaults: {owner: "Sales team"}   # value for a canonical column the files do not have
        id_from: [email]           # fields hashed into a stable id when the files have no id column
        optional: [created_at]     # REQUIRED columns this source cannot fill (left empty, not quarantined)
        metadata_only: [Case Number]   # headers kept as typed cf_meta_<slug> columns (filterable in the
                                   # warehouse), never pasted into the text that is embedded and indexed

Source values are compared after normalisation (case, spaces, underscores, hyphens ignored). An example
lives in tests/fixtures/ingest/custom_mapped/mapping.yaml.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from holocrm_core import schema
from holocrm_core.ingest import vocab
from holocrm_core.ingest.profiles import PROFILES, EntitySpec, Profile, normalise_header
from holocrm_core.text import METADATA_ONLY_PREFIX


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


def load_mapping(path: str | Path) -> Profile:
    """A :class:`Profile` built from a YAML mapping file (format in this module's docstring)."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"mapping file {path}: cannot be read ({exc})") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("entities"), dict):
        raise MappingError(f"mapping file {path}: needs an 'entities:' section (see holocrm_core.ingest.mapping)")
    base_name = str(spec.get("base", "generic"))
    if base_name != "none" and base_name not in PROFILES:
        raise MappingError(f"mapping file {path}: base {base_name!r} is not one of {', '.join(sorted(PROFILES))}, none")
    base = PROFILES.get(base_name) if base_name != "none" else None
    top_date = spec.get("date_format")
    top_currency = spec.get("default_currency")
    entities: dict[str, EntitySpec] = {}
    globs: dict[str, tuple[str, ...]] = {}
    for entity, body in spec["entities"].items():
        if entity not in schema.ENTITIES:
            raise MappingError(f"mapping file {path}: unknown entity {entity!r} (use {', '.join(schema.STAGING_ORDER)})")
        body = body or {}
        files = body.get("files") or body.get("file")
        if not files:
            raise MappingError(f"mapping file {path}: entities.{entity} needs 'files:' (a glob such as '{entity}*.csv')")
        globs[entity] = tuple([files] if isinstance(files, str) else files)
        columns: dict[str, str] = {}
        for header, canonical in (body.get("columns") or {}).items():
            if canonical not in schema.ENTITIES[entity]:
                raise MappingError(
                    f"mapping file {path}: entities.{entity}.columns maps {header!r} to {canonical!r}, which is not "
                    f"a {entity} column ({', '.join(schema.ENTITIES[entity])})"
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
                raise MappingError(f"mapping file {path}: entities.{entity}.values.{column}: {column} is not an enum column")
            allowed = {m.value for m in schema.ENUMS[(entity, column)]}
            for source, target in table.items():
                if target not in allowed:
                    raise MappingError(
                        f"mapping file {path}: entities.{entity}.values.{column} maps {source!r} to {target!r}; "
                        f"use one of {', '.join(sorted(allowed))}"
                    )
            values[column] = {vocab.normalise_value(str(k)): v for k, v in table.items()}
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
    return Profile(
        name=str(spec.get("name") or f"mapping:{path.stem}"),
        description=f"YAML mapping {path.name}",
        entities=entities,
        default_currency=str(top_currency or (base.default_currency if base else "USD")),
        closed_at_from_close_date=bool(base.closed_at_from_close_date) if base else False,
        delimiter=spec.get("delimiter"),
        encoding=spec.get("encoding"),
        file_globs=globs,
    )


__all__ = ["MappingError", "load_mapping"]
