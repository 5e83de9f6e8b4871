"""What reading and staging an export produced: per-file reports, the raw tables and the staged result."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from holocrm_core import schema

SOURCE_FILE = "_source_file"
LINE = "_line"
ALLOW_EMPTY = "_allow_empty"  # comma-separated REQUIRED columns a source cannot fill on this row
META_COLUMNS = (SOURCE_FILE, LINE, ALLOW_EMPTY)


@dataclass
class FileReport:
    """One source file (or workbook sheet) and what became of its records.

    ``entity`` is None for files that are read but hold no entity of their own (lookup tables merged into
    another entity, e.g. Maven's products.csv) and for files that could not be read. ``blank_lines``
    counts empty lines skipped (not records).
    """

    path: str
    entity: str | None
    profile: str
    rows_read: int
    rows_staged: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    blank_lines: int = 0

    @property
    def balanced(self) -> bool:
        """rows read = rows staged + rows quarantined (lookup tables and failed files excepted)."""
        if self.entity is None:
            return True
        return self.rows_read == self.rows_staged + self.rows_quarantined


def file_error_row(path: str, message: str, entity: str | None = None) -> dict:
    return {
        "entity": entity,
        "source_file": path,
        "line": 0,
        "record_id": None,
        "column": None,
        "value": None,
        "rule": "file",
        "reason": message,
    }


def quarantine_frame(rows: list[dict] | None = None) -> pl.DataFrame:
    return pl.DataFrame(rows or [], schema=schema.QUARANTINE)


@dataclass
class RawExport:
    """An export read with a profile: per entity one all-String frame with canonical column names,
    ``cf_*`` custom columns, ``_source_file`` and ``_line``."""

    tables: dict[str, pl.DataFrame]
    files: list[FileReport]
    custom_fields: dict[str, list[str]]
    profile: str
    file_errors: list[dict] = field(default_factory=list)

    @property
    def errors(self) -> pl.DataFrame:
        """Quarantine rows (rule ``file``, line 0) of the files that could not be read."""
        return quarantine_frame(self.file_errors)


@dataclass
class IngestResult:
    """Staged tables (schema columns + typed ``cf_*``), the quarantine and the per-file accounting."""

    tables: dict[str, pl.DataFrame]
    quarantine: pl.DataFrame
    files: list[FileReport]
    custom_fields: dict[str, list[str]]
    profile: str
    # reconcile() per entity and source file (with an ``entity`` column): the independent row accounting
    accounting: pl.DataFrame | None = None

    def check_rows_read_invariant(self) -> list[FileReport]:
        """The files whose rows read differ from rows staged + rows quarantined (empty when all balance)."""
        return [report for report in self.files if not report.balanced]

    def unbalanced_files(self) -> list[str]:
        """Source files whose traced accounting (reconcile) does not balance, as "entity: file"."""
        if self.accounting is None or self.accounting.is_empty():
            return []
        rows = self.accounting.filter(~pl.col("balanced"))
        return [f"{entity}: {path}" for entity, path in rows.select("entity", "source_file").iter_rows()]

    def summary(self) -> dict:
        return {
            "profile": self.profile,
            "staged": {entity: frame.height for entity, frame in self.tables.items()},
            "quarantined": self.quarantine.height,
            "quarantine_by_rule": dict(self.quarantine.group_by("rule").len().iter_rows())
            if self.quarantine.height
            else {},
            "file_errors": [r.path for r in self.files if r.error],
        }
