"""The landing folder: where export batches arrive, one folder per export (a full snapshot of the CRM)."""

from __future__ import annotations

from pathlib import Path

EXPORT_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".ndjson", ".jsonl", ".parquet", ".xlsx"}


def export_batches(landing: Path) -> list[Path]:
    """Export folders in the landing folder, oldest first (by modification time, then name)."""
    if not landing.exists():
        return []
    batches = [
        p for p in landing.iterdir() if p.is_dir() and not p.name.startswith(".") and _has_export_files(p)
    ]
    return sorted(batches, key=lambda p: (p.stat().st_mtime, p.name))


def _has_export_files(folder: Path) -> bool:
    return any(f.suffix.lower() in EXPORT_SUFFIXES for f in folder.iterdir() if f.is_file())


def resolve_export_dir(landing: Path, export_dir: str | Path | None) -> Path:
    """The export to ingest: the one named, else the newest batch in the landing folder."""
    if export_dir:
        path = Path(export_dir).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"export folder {path} does not exist")
        return path
    batches = export_batches(landing)
    if not batches:
        raise FileNotFoundError(
            f"no export in {landing}: drop an export folder there, or run `holocrm run` to generate the sample export"
        )
    return batches[-1]
