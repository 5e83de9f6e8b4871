"""Row accounting of an ingest: per source file, rows read = rows staged + rows quarantined.

Checked independently of the validator: a staged row is traced back to the raw row it came from by its id,
so a row dropped or invented by a bug in validation breaks the balance instead of hiding in it.
"""

from __future__ import annotations

import polars as pl

RECONCILIATION = pl.Schema(
    {
        "source_file": pl.String,
        "rows_read": pl.Int64,
        "rows_staged": pl.Int64,
        "rows_quarantined": pl.Int64,
        "balanced": pl.Boolean,
    }
)


def reconcile(
    raw: pl.DataFrame, staged: pl.DataFrame, quarantined: pl.DataFrame, id_column: str
) -> pl.DataFrame:
    """One row per source file with the three counts and whether they balance.

    ``raw`` carries ``_source_file`` and ``_line``; ``quarantined`` follows ``schema.QUARANTINE``.
    A staged row counts for the file whose non-quarantined raw row has the same id; staged rows that match
    no such raw row are reported under source_file ``<unknown>`` and never balance.
    """
    if raw.is_empty() and staged.is_empty() and quarantined.is_empty():
        return pl.DataFrame(schema=RECONCILIATION)
    read = raw.group_by("_source_file").len("rows_read").rename({"_source_file": "source_file"})
    rejected_keys = quarantined.filter(pl.col("line") > 0).select(
        pl.col("source_file").alias("_source_file"), pl.col("line").cast(pl.Int64).alias("_line")
    )
    kept = raw.join(rejected_keys, on=["_source_file", "_line"], how="anti")
    if id_column in kept.columns and id_column in staged.columns:
        origin = kept.select(pl.col(id_column).str.strip_chars(), "_source_file").unique(
            id_column, keep="first"
        )
        traced = staged.select(id_column).join(origin, on=id_column, how="left")
        staged_counts = (
            traced.with_columns(pl.col("_source_file").fill_null("<unknown>"))
            .group_by("_source_file")
            .len("rows_staged")
            .rename({"_source_file": "source_file"})
        )
    else:  # ids derived during staging: the counts must at least agree in total
        kept_counts = kept.group_by("_source_file").len("rows_staged").rename({"_source_file": "source_file"})
        staged_counts = (
            kept_counts
            if kept.height == staged.height
            else pl.DataFrame({"source_file": ["<unknown>"], "rows_staged": [staged.height]})
        )
    q_counts = quarantined.filter(pl.col("line") > 0).group_by("source_file").len("rows_quarantined")
    report = (
        read.join(staged_counts, on="source_file", how="full", coalesce=True)
        .join(q_counts, on="source_file", how="full", coalesce=True)
        .with_columns(pl.col("rows_read", "rows_staged", "rows_quarantined").fill_null(0).cast(pl.Int64))
        .with_columns(balanced=pl.col("rows_read") == pl.col("rows_staged") + pl.col("rows_quarantined"))
        .sort("source_file")
    )
    return report.select(RECONCILIATION.names())
