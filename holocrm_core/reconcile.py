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
    read = rows_by_file(raw, "rows_read")
    rejected_keys = quarantined.filter(pl.col("line") > 0).select(
        pl.col("source_file").alias("_source_file"), pl.col("line").cast(pl.Int64).alias("_line")
    )
    # only the id and the file are traced: filtering every raw column would copy the whole table
    kept = raw.select([c for c in (id_column, "_source_file") if c in raw.columns]).filter(
        ~at_lines(raw, rejected_keys)
    )
    if id_column in kept.columns and id_column in staged.columns:
        if kept.height == staged.height and (
            kept[id_column].str.strip_chars().eq_missing(staged[id_column].cast(pl.String)).all()
        ):
            # the staged rows are the kept raw rows, in order and with their ids: each is traced to its own
            # raw row (what the join below finds, at a fraction of its cost on millions of rows)
            staged_counts = rows_by_file(kept, "rows_staged")
        else:
            origin = kept.select(pl.col(id_column).str.strip_chars(), "_source_file").unique(
                id_column, keep="first"
            )
            traced = staged.select(id_column).join(origin, on=id_column, how="left")
            staged_counts = rows_by_file(
                traced.with_columns(pl.col("_source_file").fill_null("<unknown>")), "rows_staged"
            )
    else:  # ids derived during staging: the counts must at least agree in total
        kept_counts = rows_by_file(kept, "rows_staged")
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


def rows_by_file(frame: pl.DataFrame, name: str, column: str = "_source_file") -> pl.DataFrame:
    """``source_file`` and ``name`` (UInt32): how many rows of ``frame`` each value of ``column`` has.

    The rows of one file (the usual case: each entity is read from one file) are counted by one comparison
    with the first row's file instead of hashing every row's file name (several times cheaper)."""
    files = frame[column]
    if frame.height and files.dtype == pl.String and files.null_count() == 0 and (files == files[0]).all():
        return pl.DataFrame(
            {"source_file": [files[0]], name: [frame.height]},
            schema={"source_file": pl.String, name: pl.UInt32},
        )
    return frame.group_by(column).len(name).rename({column: "source_file"})


def at_lines(raw: pl.DataFrame, keys: pl.DataFrame) -> pl.Series:
    """Whether each raw row (``_source_file``, ``_line``) is one of ``keys`` (same columns): per file, an
    integer ``is_in`` on the lines (keys such as the rejected rows are few; a join or ``unique`` on the two
    columns would hash every raw row)."""
    mask = pl.repeat(False, raw.height, dtype=pl.Boolean, eager=True)
    if not keys.height:
        return mask
    for path, lines in keys.group_by("_source_file").agg("_line").iter_rows():
        hit = raw.select(
            (
                (pl.col("_source_file") == path if path is not None else pl.col("_source_file").is_null())
                & pl.col("_line").cast(pl.Int64).is_in(pl.Series(lines, dtype=pl.Int64).implode())
            ).fill_null(False)
        ).to_series()
        mask = mask | hit
    return mask
