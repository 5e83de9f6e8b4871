"""Read a whole export folder with a profile, stage every entity in dependency order, write the warehouse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from holocrm_core import schema
from holocrm_core.ingest import validate
from holocrm_core.ingest.profiles import PROFILES, Profile, detect_profile
from holocrm_core.ingest.reports import SOURCE_FILE, IngestResult, RawExport, file_error_row, quarantine_frame


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
    source = resolve_profile(export_dir, profile, mapping)
    if type(source).read is not Profile.read:
        # a multi-table source such as maven assembles entities across files: read it whole
        whole = source.read(export_dir)
        batches = {entity: [whole.tables[entity]] for entity in whole.tables}
        reports, errors, custom = whole.files, whole.file_errors, dict(whole.custom_fields)
        read_entity = None
    else:
        # read one entity's files at a time, so peak memory is one entity's raw text, not the whole export
        planned = source.plan(export_dir)
        first = source.read(export_dir, files=[p for p, e in planned.items() if e is None])
        batches = {entity: [frame] for entity, frame in first.tables.items()}
        reports, errors, custom = list(first.files), list(first.file_errors), dict(first.custom_fields)

        def read_entity(entity: str) -> None:
            part = source.read(export_dir, files=[p for p, e in planned.items() if e == entity])
            reports.extend(part.files)
            errors.extend(part.file_errors)
            for name, frame in part.tables.items():
                batches.setdefault(name, []).append(frame)
                custom[name] = list(dict.fromkeys(custom.get(name, []) + part.custom_fields.get(name, [])))

    known: dict[str, pl.Series] = {}
    tables: dict[str, pl.DataFrame] = {}
    quarantines: list[pl.DataFrame] = []
    for entity in schema.STAGING_ORDER:
        if read_entity is not None:
            read_entity(entity)
        frames = batches.pop(entity, [])
        if not frames:
            tables[entity] = schema.empty(entity)
            if warehouse is not None:
                warehouse.write(f"staged_{entity}", tables[entity])
            continue
        frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        del frames
        say(f"read {entity}: {frame.height:,} rows")
        staged, bad = validate.stage_entity_with_sources(entity, frame, known)
        del frame
        by_file = {(r.path, r.entity): r for r in reports}
        for path, count in staged.group_by(SOURCE_FILE).len().iter_rows():
            if (path, entity) in by_file:
                by_file[(path, entity)].rows_staged += count
        for path, count in bad.group_by("source_file").len().iter_rows():
            if (path, entity) in by_file:
                by_file[(path, entity)].rows_quarantined += count
        staged = staged.drop(SOURCE_FILE)
        known[entity] = staged[schema.ID_COLUMN[entity]]
        tables[entity] = staged
        quarantines.append(bad)
        if warehouse is not None:
            warehouse.write(f"staged_{entity}", staged)
        say(f"staged {entity}: {staged.height:,} rows, {bad.height:,} quarantined")
    for entity, frames in batches.items():  # a file whose header line hid its entity until it was read
        for frame in frames:
            for path in frame[SOURCE_FILE].unique().to_list():
                message = f"{path}: read as {entity} after {entity} were staged; name the file after its entity"
                errors.append(file_error_row(path, message, entity))
    quarantines.insert(0, quarantine_frame(errors))
    quarantine = pl.concat([q for q in quarantines if q.height], how="vertical") if any(q.height for q in quarantines) else quarantine_frame()
    quarantine = quarantine.sort(["entity", "source_file", "line"], nulls_last=True, maintain_order=True)
    custom = {e: c for e, c in custom.items() if e in tables}
    result = IngestResult(tables=tables, quarantine=quarantine, files=reports, custom_fields=custom, profile=source.name)
    if warehouse is not None:
        warehouse.write("quarantine", quarantine)
        say(f"wrote {len(tables)} staged tables and the quarantine ({quarantine.height:,} rows) to {warehouse.root}")
    return result
