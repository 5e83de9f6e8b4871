"""The one ingestion path: ``read_export`` -> ``stage_all`` (``stage_one`` per entity) -> ``reconcile``.

The CLI's ``holocrm ingest`` calls :func:`ingest_export` (read + stage all); the Dagster assets call
:func:`read_export` (``raw_*``), :func:`stage_one` (``staged_*``, one asset per entity) and
:func:`assemble_quarantine` (``quarantine``). Both therefore stage, account and quarantine the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from holocrm_core import schema
from holocrm_core.ingest import validate
from holocrm_core.ingest.profiles import PROFILES, Profile, detect_profile
from holocrm_core.ingest.reports import (
    ALLOW_EMPTY,
    SOURCE_FILE,
    FileReport,
    IngestResult,
    RawExport,
    quarantine_frame,
)
from holocrm_core.reconcile import RECONCILIATION, reconcile, rows_by_file

# Which staged entities an entity's references point at (schema.REFERENCES, grouped; self references aside).
PARENTS: dict[str, list[str]] = {
    e.plural: list(
        dict.fromkeys(
            parent
            for (child, _), parent in schema.REFERENCES.items()
            if child == e.plural and parent != e.plural
        )
    )
    for e in schema.REGISTRY
}


def resolve_profile(
    export_dir: str | Path, profile: str | Profile | None = None, mapping: str | Path | None = None
) -> Profile:
    """The profile to read an export with: a mapping file wins, then a named profile, then detection."""
    if mapping is not None:
        from holocrm_core.ingest.mapping import load_mapping

        return load_mapping(mapping)
    if isinstance(profile, Profile):
        return profile
    name = profile or detect_profile(export_dir)
    if name not in PROFILES:
        raise ValueError(
            f"unknown source profile {name!r}: choose one of {', '.join(sorted(PROFILES))} "
            "or pass a mapping file"
        )
    return PROFILES[name]


def read_export(
    export_dir: str | Path, profile: str | None = None, mapping: str | Path | None = None
) -> RawExport:
    """Read every data file of an export folder into per-entity all-String frames (see ``RawExport``).

    Unreadable files do not stop the others: each gets a ``FileReport`` with ``error`` and a ``file``
    quarantine row (``RawExport.errors``).
    """
    return resolve_profile(export_dir, profile, mapping).read(export_dir)


class MissingColumnError(ValueError):
    """A required column is absent from an entity's files altogether: one error that names the fix."""


class NothingToIngestError(ValueError):
    """The export folder holds no file of any CRM entity: ingesting it would replace every table with nothing."""


def require_recognised(raw: RawExport, export_dir: str | Path) -> None:
    """Refuse an export in which no file was recognised as a CRM table, before anything is written.

    An empty folder, or one holding only unrelated files (``expenses.csv``), is almost always the wrong
    folder; staging it would replace every staged table with 0 rows.
    """
    if raw.tables:
        return
    if not raw.files:
        found = "it holds no data file (CSV, TSV, JSON, NDJSON, Parquet, XLSX)"
    else:
        found = (
            "no file in it is a CRM table: "
            + "; ".join((f.error or f.path) for f in raw.files[:5])
            + ("; ..." if len(raw.files) > 5 else "")
        )
    raise NothingToIngestError(
        f"nothing to ingest in {export_dir}: {found}. The warehouse was left as it was; point at the export "
        "folder, name files after their entity (contacts, companies, deals, activities, attachments), or pass "
        "a mapping file"
    )


@dataclass
class StagedEntity:
    """One entity staged: canonical rows, its quarantine rows, per-file accounting, and per-file counts."""

    entity: str
    staged: pl.DataFrame
    quarantined: pl.DataFrame
    accounting: pl.DataFrame  # reconcile(): source_file, rows_read, rows_staged, rows_quarantined, balanced
    staged_by_file: dict[str, int]
    defaulted: dict[str, int] = field(default_factory=dict)  # column -> rows given schema.DEFAULT_WHEN_ABSENT

    def warnings(self) -> list[str]:
        return [
            f"{self.entity}: no {column} column in the export; {rows:,} rows got the default "
            f"{schema.DEFAULT_WHEN_ABSENT[(self.entity, column)]!r}"
            for column, rows in self.defaulted.items()
        ]


def _complete_required(entity: str, raw: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Fill the required columns that have a default when the export lacks them; raise for the others."""
    if raw.is_empty():
        return raw, {}
    record = schema.entity(entity)
    defaulted = {}
    for (owner, column), value in schema.DEFAULT_WHEN_ABSENT.items():
        if owner == record.plural and column not in raw.columns:
            raw = raw.with_columns(pl.lit(value, pl.String).alias(column))
            defaulted[column] = raw.height
    allowed = set()
    if ALLOW_EMPTY in raw.columns:  # columns every row of this source may leave empty (mapping: optional)
        per_row = raw[ALLOW_EMPTY].fill_null("").str.split(",").to_list()
        allowed = set.intersection(*(set(row) for row in per_row)) if per_row else set()
    missing = [
        c
        for c in schema.REQUIRED[record.plural]
        if c != record.id_column and c not in raw.columns and c not in allowed
    ]
    if missing:
        files = ", ".join(sorted(raw[SOURCE_FILE].unique().to_list())) if SOURCE_FILE in raw.columns else "?"
        names = ", ".join(missing)
        raise MissingColumnError(
            f"{record.plural} ({files}): required column(s) {names} missing from the export, so no "
            f"{record.name} could be staged. Map the export's own column in a mapping file (entities: "
            f'{record.plural}: columns: {{"Your header": {missing[0]}}}), give a value for every row '
            f"(defaults: {{{missing[0]}: ...}}), or mark it optional (optional: [{missing[0]}]); "
            "see holocrm_core/ingest/mapping.py"
        )
    return raw, defaulted


def stage_one(entity: str, raw: pl.DataFrame, known_ids: dict[str, pl.Series]) -> StagedEntity:
    """Validate one entity's raw rows against the ids staged for its parents, and account for every row.

    ``known_ids`` maps a referenced entity to its staged ids; a parent absent from it is not checked (the
    export carried no such file). The accounting is :func:`holocrm_core.reconcile.reconcile`, which traces
    staged rows back to raw rows independently of the validator.
    """
    record = schema.entity(entity)
    raw, defaulted = _complete_required(record.plural, raw)
    staged, quarantined = validate.stage_entity_with_sources(record.plural, raw, known_ids)
    by_file = dict(rows_by_file(staged, "rows", SOURCE_FILE).iter_rows()) if staged.height else {}
    staged = staged.drop(SOURCE_FILE)
    accounting = (
        reconcile(raw, staged, quarantined, record.id_column)
        if raw.height or staged.height
        else (pl.DataFrame(schema=RECONCILIATION))
    )
    return StagedEntity(record.plural, staged, quarantined, accounting, by_file, defaulted)


def assemble_quarantine(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Every entity's rejected rows and the unreadable files in one ``schema.QUARANTINE`` table, sorted."""
    frames = [p.select(schema.QUARANTINE.names()).cast(dict(schema.QUARANTINE)) for p in parts if p.height]
    if not frames:
        return quarantine_frame()
    return pl.concat(frames, how="vertical").sort(
        ["entity", "source_file", "line"], nulls_last=True, maintain_order=True
    )


def stage_all(raw: RawExport, warehouse=None, progress: Callable[[str], None] | None = None) -> IngestResult:
    """Stage every entity of a read export in ``schema.STAGING_ORDER``; write them when given a warehouse.

    Each reference is checked against the ids staged for the entity it names; an entity without a file
    stages as an empty table of its schema, and references to it are not checked. Re-running on the same
    files gives the same tables (ids come from the files or from a hash of identifying fields; warehouse
    tables are replaced, not appended). ``raw.tables`` is emptied as entities are staged, to bound memory.
    """
    say = progress or (lambda message: None)
    # each staged table is written on a background thread while the next entity is staged (encoding
    # Parquet and validating are each mostly one core's work); writes keep their order, a failure is raised
    writer = (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="holocrm-write")
        if warehouse is not None
        else None
    )
    writes: list[Future] = []

    def write(name: str, frame: pl.DataFrame) -> None:
        if writer is not None:
            writes.append(writer.submit(warehouse.write, name, frame))

    try:
        result = _stage_entities(raw, say, write)
    finally:
        if writer is not None:
            writer.shutdown(wait=True)
    for pending in writes:
        pending.result()
    if warehouse is not None:
        warehouse.write("quarantine", result.quarantine)
        say(
            f"wrote {len(result.tables)} staged tables and the quarantine ({result.quarantine.height:,} rows) "
            f"to {warehouse.root}"
        )
    return result


def _stage_entities(
    raw: RawExport, say: Callable[[str], None], write: Callable[[str, pl.DataFrame], None]
) -> IngestResult:
    reports: dict[tuple[str, str | None], FileReport] = {(r.path, r.entity): r for r in raw.files}
    known: dict[str, pl.Series] = {}
    tables: dict[str, pl.DataFrame] = {}
    quarantines: list[pl.DataFrame] = [raw.errors]
    accounting: list[pl.DataFrame] = []
    warnings: list[str] = []
    for record in schema.REGISTRY:
        frame = raw.tables.pop(record.plural, None)
        if frame is None:
            tables[record.plural] = schema.empty(record.plural)
        else:
            say(f"read {record.plural}: {frame.height:,} rows")
            result = stage_one(
                record.plural, frame, {p: known[p] for p in PARENTS[record.plural] if p in known}
            )
            del frame
            for path, count in result.staged_by_file.items():
                if (path, record.plural) in reports:
                    reports[(path, record.plural)].rows_staged += count
            for path, count in result.quarantined.group_by("source_file").len().iter_rows():
                if (path, record.plural) in reports:
                    reports[(path, record.plural)].rows_quarantined += count
            for warning in result.warnings():
                say(f"warning: {warning}")
            warnings.extend(result.warnings())
            known[record.plural] = result.staged[record.id_column]
            tables[record.plural] = result.staged
            quarantines.append(result.quarantined)
            accounting.append(result.accounting.with_columns(pl.lit(record.plural).alias("entity")))
            say(
                f"staged {record.plural}: {result.staged.height:,} rows, "
                f"{result.quarantined.height:,} quarantined"
            )
        write(record.staged_asset, tables[record.plural])
    quarantine = assemble_quarantine(quarantines)
    custom = {e: c for e, c in raw.custom_fields.items() if e in tables}
    result = IngestResult(
        tables=tables,
        quarantine=quarantine,
        files=raw.files,
        custom_fields=custom,
        profile=raw.profile,
        accounting=pl.concat(accounting, how="vertical") if accounting else None,
        warnings=warnings,
    )
    return result


def ingest_export(
    export_dir: str | Path,
    warehouse=None,
    profile: str | None = None,
    mapping: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestResult:
    """Read, validate and stage an export: ``stage_all(read_export(...))``; writes ``staged_*`` and
    ``quarantine`` to the warehouse when one is given. Raises ``NothingToIngestError`` (and writes nothing)
    when no file of the folder is a CRM table."""
    raw = read_export(export_dir, profile, mapping)
    require_recognised(raw, export_dir)
    return stage_all(raw, warehouse=warehouse, progress=progress)
