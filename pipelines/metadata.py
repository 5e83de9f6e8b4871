"""Materialization metadata helpers shared by the asset modules."""

import dagster as dg
import polars as pl


def markdown_table(frame: pl.DataFrame, rows: int = 10, width: int = 60) -> dg.MetadataValue:
    """The first rows of a frame as a Markdown table for the Dagster UI."""
    if frame.is_empty():
        return dg.MetadataValue.md("_(none)_")
    head = frame.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "/")[:width] for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))
