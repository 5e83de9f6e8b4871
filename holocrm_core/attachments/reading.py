"""The `attachment_texts` table: every staged attachment's file read once per content hash, failures quarantined.

Incremental: a file whose SHA-256 is already in the previous table is not read again (its text, sections
and status are reused), so re-running the asset on an unchanged export reads nothing. Files shared by
many activities are read once. A file that cannot be read is listed in the quarantine with its rule and
a reason; its activity keeps everything else (body, other attachments).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from holocrm_core.attachments.extract import AttachmentReader
from holocrm_core.attachments.model import Limits

TEXT_SCHEMA = {
    "attachment_id": pl.String,
    "activity_id": pl.String,
    "file_name": pl.String,
    "file_hash": pl.String,
    "kind": pl.String,
    "media_type": pl.String,
    "status": pl.String,
    "rule": pl.String,
    "reason": pl.String,
    "text": pl.String,
    "sections": pl.String,
    "metadata": pl.String,
    "warnings": pl.String,
    "problems": pl.String,
    "seconds": pl.Float64,
}
QUARANTINE_SCHEMA = {
    "attachment_id": pl.String,
    "activity_id": pl.String,
    "file_name": pl.String,
    "locator": pl.String,
    "rule": pl.String,
    "reason": pl.String,
}
_CARRIED = [
    "file_hash",
    "kind",
    "media_type",
    "status",
    "rule",
    "reason",
    "text",
    "sections",
    "metadata",
    "warnings",
    "problems",
    "seconds",
]


def file_hash(path: Path, max_bytes: int) -> str:
    """SHA-256 of the file (streamed); a file over the size limit is keyed by its size and never read."""
    size = path.stat().st_size
    if size > max_bytes:
        return f"size:{size}"
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class AttachmentRead:
    texts: pl.DataFrame
    quarantine: pl.DataFrame
    files_read: int = 0
    files_reused: int = 0
    seconds_by_kind: dict = field(default_factory=dict)
    peak_rss_bytes: int = 0


def _outcome_row(outcome, digest: str) -> dict:
    if outcome.ok:
        e = outcome.extracted
        return {
            "file_hash": digest,
            "kind": e.kind,
            "media_type": e.media_type,
            "status": "ok",
            "rule": "",
            "reason": "",
            "text": e.text,
            "sections": json.dumps([{"locator": s.locator, "text": s.text} for s in e.sections]),
            "metadata": json.dumps(e.metadata, default=str),
            "warnings": json.dumps(e.warnings),
            "problems": json.dumps([p.__dict__ for p in e.problems]),
            "seconds": outcome.seconds,
        }
    return {
        "file_hash": digest,
        "kind": "",
        "media_type": "",
        "status": "quarantined",
        "rule": outcome.rule,
        "reason": outcome.reason,
        "text": "",
        "sections": "[]",
        "metadata": "{}",
        "warnings": "[]",
        "problems": "[]",
        "seconds": outcome.seconds,
    }


def read_attachments(
    attachments: pl.DataFrame,
    export_dir: str | Path,
    previous: pl.DataFrame | None = None,
    limits: Limits | None = None,
    progress=None,
) -> AttachmentRead:
    """Text of every row of ``attachments`` (attachment_id, activity_id, file_name, path relative to
    ``export_dir``), reusing ``previous`` rows by file hash."""
    limits = limits or Limits()
    root = Path(export_dir)
    cache: dict[str, dict] = {}
    if previous is not None and previous.height:
        for row in previous.unique("file_hash", keep="first").iter_rows(named=True):
            cache[row["file_hash"]] = {k: row[k] for k in _CARRIED}
    rows, reused, read = [], 0, 0
    seconds_by_kind: dict[str, list[float]] = {}
    with AttachmentReader(limits) as reader:
        for item in attachments.iter_rows(named=True):
            base = {
                "attachment_id": item["attachment_id"],
                "activity_id": item["activity_id"],
                "file_name": item["file_name"],
            }
            path = root / (item.get("path") or f"attachments/{item['file_name']}")
            try:
                resolved = path.resolve()
                if root.resolve() not in resolved.parents:  # "../../etc/passwd" in an export row
                    raise PermissionError("the path leaves the export folder")
                digest = file_hash(resolved, limits.max_bytes)
            except (OSError, PermissionError) as exc:
                rows.append(
                    {
                        **base,
                        "file_hash": "",
                        "kind": "",
                        "media_type": "",
                        "status": "quarantined",
                        "rule": "missing",
                        "reason": f"{item.get('path')}: {exc}",
                        "text": "",
                        "sections": "[]",
                        "metadata": "{}",
                        "warnings": "[]",
                        "problems": "[]",
                        "seconds": 0.0,
                    }
                )
                continue
            if digest in cache:
                rows.append({**base, **cache[digest]})
                reused += 1
                continue
            outcome = reader.read(resolved, item["file_name"])
            read += 1
            cache[digest] = _outcome_row(outcome, digest)
            kind = cache[digest]["kind"] or "quarantined"
            seconds_by_kind.setdefault(kind, []).append(outcome.seconds)
            rows.append({**base, **cache[digest]})
            if progress and read % 50 == 0:
                progress(f"read {read} attachment files")
        peak = reader.peak_rss_bytes
    texts = pl.DataFrame(rows, schema=TEXT_SCHEMA)
    return AttachmentRead(
        texts,
        quarantine_rows(texts),
        files_read=read,
        files_reused=reused,
        seconds_by_kind={k: round(sum(v), 3) for k, v in seconds_by_kind.items()},
        peak_rss_bytes=peak,
    )


def quarantine_rows(texts: pl.DataFrame) -> pl.DataFrame:
    """Unreadable attachments, and unreadable parts inside readable ones (an encrypted ZIP member)."""
    rows = []
    for row in texts.iter_rows(named=True):
        base = {
            "attachment_id": row["attachment_id"],
            "activity_id": row["activity_id"],
            "file_name": row["file_name"],
        }
        if row["status"] != "ok":
            rows.append({**base, "locator": "", "rule": row["rule"], "reason": row["reason"]})
        for problem in json.loads(row["problems"] or "[]"):
            rows.append({**base, **problem})
    return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)
