"""Ingest assets: export files in the landing folder -> raw_* -> staged_* canonical tables + quarantine."""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from holocrm_core import quality, schema
from holocrm_core.ingest.export import PARENTS
from holocrm_core.partitions import frame_shards, in_shards
from holocrm_core.reconcile import at_lines
from pipelines.io_manager import LAZY, SHARD_COLUMN, optional_ins
from pipelines.metadata import check_result, markdown_table
from pipelines.partitions import (
    PARTITIONED,
    SHARDS,
    WHOLE_BATCH,
    export_folder,
    run_partitions,
    whole_batch_ins,
)
from pipelines.resources import ExportResource, StorageResource

GROUP = "ingest"


def _markdown(frame: pl.DataFrame, rows: int = 10, width: int = 60) -> dg.MetadataValue:
    return markdown_table(frame, rows=rows, width=width)


FILE_ERRORS = "file_errors"


@dg.multi_asset(
    outs={
        **{
            e.raw_asset: dg.AssetOut(
                group_name=GROUP,
                description=f"Export rows of {e.plural}, as read (strings), "
                "with the source file and line of each row.",
                is_required=False,
                metadata={SHARD_COLUMN: e.id_column},
            )
            for e in schema.REGISTRY
        },
        FILE_ERRORS: dg.AssetOut(
            group_name=GROUP,
            description="Export files that could not be read (path and reason); part of the quarantine "
            "(kept in shard 0 of the batch: a file belongs to no one entity).",
            is_required=False,
        ),
    },
    can_subset=True,
    **PARTITIONED,
)
def raw_export(context: AssetExecutionContext, export: ExportResource, storage: StorageResource):
    """Read every file of the export once with its source profile; unreadable files are reported, not fatal.

    Subsettable: `holocrm run --only raw_contacts` reads the export and writes only the selected raw tables.
    Partitioned: a run of some shards of a batch reads that batch's export and keeps the rows of its shards.
    """
    from holocrm_core.ingest import read_export, require_recognised

    batch, shards = run_partitions(context)
    export_dir = export_folder(export, storage, batch)
    context.log.info(f"reading export {export_dir} (batch {batch}, shards {shards} of {SHARDS})")
    raw = read_export(export_dir, profile=export.profile or None, mapping=export.mapping or None)
    require_recognised(
        raw, export_dir
    )  # an empty or unrelated folder fails here, before any table is written
    for report in raw.files:
        if report.error:
            context.log.warning(f"{report.path}: {report.error}")
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    if FILE_ERRORS in selected:
        yield dg.MaterializeResult(
            asset_key=FILE_ERRORS,
            value={(batch, s): raw.errors if s == 0 else raw.errors.clear() for s in shards},
            metadata={"export_dir": str(export_dir), "rows": raw.errors.height},
        )
    for e in schema.REGISTRY:
        if e.raw_asset not in selected:
            continue
        frame = raw.tables.get(e.plural)
        if frame is None:
            frame = pl.DataFrame(schema={"_source_file": pl.String, "_line": pl.Int64})
        frame = in_shards(frame, e.id_column, shards, SHARDS)
        files = sorted(frame["_source_file"].unique().to_list()) if frame.height else []
        yield dg.MaterializeResult(
            asset_key=e.raw_asset,
            value=frame,
            metadata={
                "export_dir": str(export_dir),
                "profile": raw.profile,
                "rows": frame.height,
                "files": ", ".join(files) or "(none)",
                "custom_fields": ", ".join(raw.custom_fields.get(e.plural, [])) or "(none)",
                "unreadable_files": sum(1 for r in raw.files if r.error),
            },
        )


def _quarantine_by_shard(
    quarantined: pl.DataFrame, raw: pl.DataFrame, id_column: str, batch: str, shards: list[int]
) -> dict[tuple[str, int], pl.DataFrame]:
    """The rejected rows of each shard: a row's shard is that of the raw row it was read from (same file and
    line), so a row rejected for a malformed or missing id still lands in exactly one shard."""
    if not quarantined.height:
        return {(batch, s): quarantined for s in shards}
    # only the raw rows at a rejected row's file and line matter: their shards, not every raw row's
    keys = quarantined.select(
        pl.col("source_file").cast(pl.String).alias("_source_file"),
        pl.col("line").cast(pl.Int64).alias("_line"),
    )
    rejected = raw.filter(at_lines(raw.with_columns(pl.col("_source_file").cast(pl.String)), keys))
    origin = rejected.select(
        pl.col("_source_file").cast(pl.String).alias("source_file"),
        pl.col("_line").cast(pl.Int64).alias("line"),
        frame_shards(rejected, id_column, SHARDS).alias("_shard"),
    ).unique(subset=["source_file", "line"], keep="first", maintain_order=True)
    located = quarantined.with_columns(
        pl.col("source_file").cast(pl.String), pl.col("line").cast(pl.Int64)
    ).join(origin, on=["source_file", "line"], how="left", maintain_order="left")
    located = located.with_columns(
        pl.col("_shard").fill_null(frame_shards(quarantined, "record_id", SHARDS))
    ).with_columns(pl.col(c).cast(quarantined.schema[c]) for c in ("source_file", "line"))
    parts = {(batch, s): located.filter(pl.col("_shard") == s).drop("_shard") for s in shards}
    placed = sum(p.height for p in parts.values())
    expected = located.filter(pl.col("_shard").is_in(shards)).height
    if placed != expected:
        raise ValueError(f"{expected} rejected rows but {placed} placed in shards {shards}: none may be lost")
    return parts


def _known_parent_ids(context, entity: str, inputs: dict) -> dict[str, pl.Series]:
    """Ids of the parents this export carries; a parent with no file, or not built yet, cannot be checked.
    The parents' tables come as lazy scans: only the raw table's row count and the staged ids are read (at
    1M contacts the raw and staged contacts are over 1 GB in memory)."""
    known = {}
    for parent in PARENTS[entity]:
        record = schema.entity(parent)
        raw, staged = inputs.get(record.raw_asset), inputs.get(record.staged_asset)
        if raw is None or staged is None:
            context.log.warning(
                f"{entity}: references to {parent} not checked ({record.staged_asset} not built)"
            )
            continue
        if _rows(raw):
            known[parent] = _collect(staged.select(record.id_column))[record.id_column]
    return known


def _rows(frame: pl.DataFrame | pl.LazyFrame) -> int:
    return frame.height if isinstance(frame, pl.DataFrame) else frame.select(pl.len()).collect().item()


def _collect(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame if isinstance(frame, pl.DataFrame) else frame.collect()


def _staged_asset(entity: str):
    record = schema.entity(entity)
    key = record.staged_asset

    parents = [schema.entity(p) for p in PARENTS[entity]]

    @dg.multi_asset(
        name=key,
        outs={
            key: dg.AssetOut(
                group_name=GROUP,
                description=f"Canonical, validated {entity} (holocrm_core.schema); rejected rows go to "
                f"{record.quarantine_table}.",
                metadata={SHARD_COLUMN: record.id_column},
            ),
            record.quarantine_table: dg.AssetOut(
                group_name=GROUP,
                description=f"The {entity} rows staging rejected: source file, line, column, value, reason.",
            ),
        },
        ins={
            # staged from the whole batch, then cut to the run's shards: staging infers a column's date format
            # and a custom field's type from all of its values, and a company's parent may be in any shard,
            # so a shard staged alone could differ from the same rows staged with their batch
            # (a lazy scan, collected in the asset: the only reference to the rows is the asset's own, so
            # they are freed once the quarantine is placed, before the staged table is written)
            record.raw_asset: dg.AssetIn(
                record.raw_asset, partition_mapping=WHOLE_BATCH, metadata={LAZY: True}
            ),
            # a reference may point at a parent of any shard: the parents' whole batch is scanned (their
            # staged ids and the raw tables' row counts are read)
            **whole_batch_ins([p.raw_asset for p in parents] + [p.staged_asset for p in parents], lazy=True),
        },
        **PARTITIONED,
        check_specs=[
            dg.AssetCheckSpec(
                "no_rows_lost",
                asset=key,
                description="Per source file: rows read = rows staged + rows quarantined.",
            ),
            dg.AssetCheckSpec(
                "unique_ids", asset=key, description=f"{record.id_column} is unique and never empty."
            ),
            dg.AssetCheckSpec(
                "referential_integrity",
                asset=key,
                description="Every foreign key present points at a staged row.",
            ),
            dg.AssetCheckSpec(
                "null_rates_within_bounds",
                asset=key,
                description="Required columns are never null; the columns a usable export fills "
                "(schema.NULL_RATE_LIMITS) are null within their bounds.",
                blocking=False,
            ),
        ],
    )
    def staged(context: AssetExecutionContext, **inputs: pl.DataFrame | None):
        from holocrm_core.ingest import stage_one

        batch, shards = run_partitions(context)
        raw = _collect(inputs[record.raw_asset])
        known_ids = _known_parent_ids(context, entity, inputs)
        result = stage_one(entity, raw, known_ids)
        for warning in result.warnings():
            context.log.warning(warning)
        staged_frame = in_shards(result.staged, record.id_column, shards, SHARDS)
        quarantine_parts = _quarantine_by_shard(result.quarantined, raw, record.id_column, batch, shards)
        del raw  # the raw rows are not needed past here: freed before the tables are written
        quarantined = pl.concat(list(quarantine_parts.values()))
        checks = quality.staged_checks(entity, result.staged, result.accounting, known_ids)
        del known_ids
        by_rule = (
            quarantined.group_by("rule").len().sort("len", descending=True)
            if quarantined.height
            else quarantined
        )
        context.log.info(f"{entity}: {staged_frame.height} staged, {quarantined.height} quarantined")
        yield dg.MaterializeResult(
            asset_key=record.quarantine_table,
            value=quarantine_parts,
            metadata={"rows": quarantined.height, "quarantined_by_rule": _markdown(by_rule)},
        )
        yield dg.MaterializeResult(
            asset_key=key,
            value=staged_frame,
            metadata={
                "rows": staged_frame.height,
                "quarantined": quarantined.height,
                "defaulted": dg.MetadataValue.json(result.defaulted),
                "quarantined_by_rule": _markdown(by_rule),
                "custom_fields": ", ".join(schema.custom_columns(staged_frame)) or "(none)",
                "rows_by_file": _markdown(result.accounting, rows=50),
                "null_rates": dg.MetadataValue.json(quality.null_rates(entity, staged_frame)),
                "preview": _markdown(staged_frame.select(staged_frame.columns[:6]), rows=5),
            },
            check_results=[
                check_result(
                    outcome,
                    severity=dg.AssetCheckSeverity.WARN
                    if outcome.name == "null_rates_within_bounds"
                    else None,
                )
                for outcome in checks
            ],
        )

    return staged


staged_assets = [_staged_asset(entity) for entity in schema.STAGING_ORDER]
staged_companies, staged_contacts, staged_deals, staged_activities, staged_attachments = staged_assets


QUARANTINE_PARTS = [e.quarantine_table for e in schema.REGISTRY] + [FILE_ERRORS]


@dg.asset(
    group_name=GROUP,
    ins=optional_ins(QUARANTINE_PARTS),
    description="Every rejected row and unreadable file: source file, line, column, value and an actionable "
    "reason.",
)
def quarantine(context: AssetExecutionContext, **parts: pl.DataFrame | None) -> dg.MaterializeResult:
    from holocrm_core.ingest import assemble_quarantine

    frame = assemble_quarantine([parts[name] for name in QUARANTINE_PARTS if parts.get(name) is not None])
    summary = frame.group_by("entity", "rule").len().sort("entity", "rule") if frame.height else frame
    return dg.MaterializeResult(
        value=frame,
        metadata={
            "rows": frame.height,
            "unreadable_files": frame.filter(pl.col("rule") == "file").height,
            "by_entity_and_rule": _markdown(summary, rows=60),
            "examples": _markdown(frame.select("source_file", "line", "column", "value", "reason"), rows=10),
        },
    )
