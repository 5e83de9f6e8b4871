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
        lines.append(
            "| " + " | ".join("" if v is None else str(v).replace("|", "/")[:width] for v in row) + " |"
        )
    return dg.MetadataValue.md("\n".join(lines))


def check_result(
    outcome, severity: dg.AssetCheckSeverity | None = None, rows: int = 50
) -> dg.AssetCheckResult:
    """A ``holocrm_core.quality.CheckOutcome`` as Dagster's check result (frames as Markdown, dicts JSON)."""

    def value(v):
        if isinstance(v, pl.DataFrame):
            return markdown_table(v, rows=rows)
        if isinstance(v, (dict, list)):
            return dg.MetadataValue.json(v)
        return v

    extra = {"severity": severity} if severity is not None else {}
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=bool(outcome.passed),
        metadata={k: value(v) for k, v in outcome.metadata.items()},
        **extra,
    )


NOTHING_TO_DO = "nothing_to_do"


def nothing_to_do(context, reason: str, **metadata) -> dict:
    """Metadata of an asset that had no input to work on: the reason, logged and shown in the UI, and the
    figures a person looks for (at zero). The run goes on: an export without deals or attachments is valid."""
    context.log.info(f"nothing to do: {reason}")
    return {NOTHING_TO_DO: reason, **metadata}
