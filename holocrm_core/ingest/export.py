"""Read a whole export folder with a profile, stage every entity in dependency order, write the warehouse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from holocrm_core import schema
from holocrm_core.ingest import validate
from holocrm_core.ingest.profiles import PROFILES, Profile, detect_profile
from holocrm_core.ingest.reports import SOURCE_FILE, IngestResult, RawExport, quarantine_frame


def resolve_profile(export_dir: str | Path, profile: str | Profile | None = None, mapping: str | Path | None = None) -> Profile:
    """The profile to read an export with: a mapping file wins, then a named profile, then detection."""
    if mapping is not None:
        from holocrm_core.ingest.mapping import load_mapping

        return load_mapping(mapping)
    if isinstance(profile, Profile):
        return profile
    name = profile or detect_profile(export_dir)
    if name not in PROFILES:
        raise ValueError(f"unknown source profile {name!r}: choose one of {', '.join(sorted(PROFILES))} or pass a mapping file")
    return PROFILES[name]


def read_export(export_dir: str | Path, profile: str | None = None, mapping: str | Path | None = None) -> RawExport:
    """Read every data file of an export folder into per-entity all-String frames (see ``RawExport``).

    Unreadable files do not stop the others: each gets a ``FileReport`` with ``error`` and a ``file``
    quarantine row (``RawExport.errors``).
    """
    return resolve_profile(export_dir, profile, mapping).read(export_dir)


def ingest_export(
    export_dir: str | Path,
    warehouse=None,
    profile: str | None = None,
    mapping: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestResult:
    """Read, validate and stage an export; write ``staged_<entity>`` and ``quarantine`` to the warehouse.

    Entities are staged in ``schema.STAGING_ORDER`` so each reference is checked against the ids staged
    for the entity it names. An entity without a file stages as an empty table of its schema, and
    references to it are not checked. Re-running on the same files gives the same tables (ids come from
    the files or from a hash of identifying fields; the warehouse tables are replaced, not appended).
    """
    say = progress or (lambda message: None)
    raw = read_export(export_dir, profile, mapping)
    say(f"read {len(raw.files)} file(s) with profile {raw.profile}: " + ", ".join(f"{e} {f.height:,}" for e, f in raw.tables.items()))
    known: dict[str, pl.Series] = {}
    tables: dict[str, pl.DataFrame] = {}
    quarantines = [raw.errors]
    reports = {(r.path, r.entity): r for r in raw.files}
    for entity in schema.STAGING_ORDER:
        frame = raw.tables.pop(entity, None)  # staged copies replace the raw ones as we go (memory)
        if frame is None:
            tables[entity] = schema.empty(entity)
            continue
        staged, bad = validate.stage_entity_with_sources(entity, frame, known)
        del frame
        for path, count in staged.group_by(SOURCE_FILE).len().iter_rows():
            if (path, entity) in reports:
                reports[(path, entity)].rows_staged += count
        for path, count in bad.group_by("source_file").len().iter_rows():
            if (path, entity) in reports:
                reports[(path, entity)].rows_quarantined += count
        staged = staged.drop(SOURCE_FILE)
        known[entity] = staged[schema.ID_COLUMN[entity]]
        tables[entity] = staged
        quarantines.append(bad)
        say(f"staged {entity}: {staged.height:,} rows, {bad.height:,} quarantined")
    quarantine = pl.concat([q for q in quarantines if q.height], how="vertical") if any(q.height for q in quarantines) else quarantine_frame()
    quarantine = quarantine.sort(["entity", "source_file", "line"], nulls_last=True, maintain_order=True)
    result = IngestResult(tables=tables, quarantine=quarantine, files=raw.files, custom_fields=raw.custom_fields, profile=raw.profile)
    if warehouse is not None:
        for entity, staged in tables.items():
            warehouse.write(f"staged_{entity}", staged)
        warehouse.write("quarantine", quarantine)
        say(f"wrote {len(tables)} staged tables and the quarantine ({quarantine.height:,} rows) to {warehouse.root}")
    return result
