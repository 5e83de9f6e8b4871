"""Ingest assets: export files in the landing folder -> raw_* -> staged_* canonical tables + quarantine."""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from holocrm_core import quality, schema
from holocrm_core.ingest.export import PARENTS
from pipelines.metadata import check_result, markdown_table
from pipelines.resources import ExportResource, StorageResource

GROUP = "ingest"


def _markdown(frame: pl.DataFrame, rows: int = 10, width: int = 60) -> dg.MetadataValue:
    return markdown_table(frame, rows=rows, width=width)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            e.raw_asset,
            group_name=GROUP,
            description=f"Export rows of {e.plural}, as read (strings), "
            "with the source file and line of each row.",
            skippable=True,
        )
        for e in schema.REGISTRY
    ],
    can_subset=True,
)
def raw_export(context: AssetExecutionContext, export: ExportResource, storage: StorageResource):
    """Read every file of the export once with its source profile; unreadable files are reported, not fatal.

    Subsettable: `holocrm run --only raw_contacts` reads the export and writes only the selected raw tables.
    """
    from holocrm_core.ingest import read_export, require_recognised

    export_dir = export.folder(storage)
    context.log.info(f"reading export {export_dir}")
    raw = read_export(export_dir, profile=export.profile or None, mapping=export.mapping or None)
    require_recognised(
        raw, export_dir
    )  # an empty or unrelated folder fails here, before any table is written
    warehouse = storage.warehouse()
    warehouse.write("file_errors", raw.errors)
    for report in raw.files:
        if report.error:
            context.log.warning(f"{report.path}: {report.error}")
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    for e in schema.REGISTRY:
        if e.raw_asset not in selected:
            continue
        frame = raw.tables.get(e.plural)
        if frame is None:
            frame = pl.DataFrame(schema={"_source_file": pl.String, "_line": pl.Int64})
        warehouse.write(e.raw_asset, frame)
        files = sorted(frame["_source_file"].unique().to_list()) if frame.height else []
        yield dg.MaterializeResult(
            asset_key=e.raw_asset,
            metadata={
                "export_dir": str(export_dir),
                "profile": raw.profile,
                "rows": frame.height,
                "files": ", ".join(files) or "(none)",
                "custom_fields": ", ".join(raw.custom_fields.get(e.plural, [])) or "(none)",
                "unreadable_files": sum(1 for r in raw.files if r.error),
            },
        )


def _known_parent_ids(context, warehouse, entity: str) -> dict[str, pl.Series]:
    """Ids of the parents this export carries; a parent with no file, or not built yet, cannot be checked."""
    known = {}
    for parent in PARENTS[entity]:
        record = schema.entity(parent)
        if not (warehouse.exists(record.raw_asset) and warehouse.exists(record.staged_asset)):
            context.log.warning(
                f"{entity}: references to {parent} not checked ({record.staged_asset} not built)"
            )
            continue
        if warehouse.read(record.raw_asset).height:
            known[parent] = warehouse.read(record.staged_asset)[record.id_column]
    return known


def _staged_asset(entity: str):
    record = schema.entity(entity)
    key = record.staged_asset

    @dg.asset(
        name=key,
        group_name=GROUP,
        deps=[record.raw_asset, *[schema.entity(p).staged_asset for p in PARENTS[entity]]],
        description=f"Canonical, validated {entity} (holocrm_core.schema); rejected rows go to quarantine.",
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
    def staged(context: AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
        from holocrm_core.ingest import stage_one

        warehouse = storage.warehouse()
        raw = warehouse.read(record.raw_asset)
        known_ids = _known_parent_ids(context, warehouse, entity)
        result = stage_one(entity, raw, known_ids)
        for warning in result.warnings():
            context.log.warning(warning)
        staged_frame, quarantined = result.staged, result.quarantined
        warehouse.write(key, staged_frame)
        warehouse.write(record.quarantine_table, quarantined)
        checks = quality.staged_checks(entity, staged_frame, result.accounting, known_ids)
        by_rule = (
            quarantined.group_by("rule").len().sort("len", descending=True)
            if quarantined.height
            else quarantined
        )
        context.log.info(f"{entity}: {staged_frame.height} staged, {quarantined.height} quarantined")
        return dg.MaterializeResult(
            metadata={
                "rows": staged_frame.height,
                "quarantined": quarantined.height,
                "defaulted": dg.MetadataValue.json(result.defaulted),
                "quarantined_by_rule": _markdown(by_rule),
                "custom_fields": ", ".join(schema.custom_columns(staged_frame)) or "(none)",
                "rows_by_file": _markdown(result.accounting, rows=50),
                "null_rates": dg.MetadataValue.json(quality.null_rates(entity, staged_frame)),
                "preview": _markdown(staged_frame.select(staged_frame.columns[:6]), rows=5),
                "path": str(warehouse.path(key)),
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


@dg.asset(
    group_name=GROUP,
    deps=list(schema.STAGED_TABLES),
    description="Every rejected row and unreadable file: source file, line, column, value and an actionable "
    "reason.",
)
def quarantine(context: AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    from holocrm_core.ingest import assemble_quarantine

    warehouse = storage.warehouse()
    parts = [
        warehouse.read(e.quarantine_table) for e in schema.REGISTRY if warehouse.exists(e.quarantine_table)
    ]
    if warehouse.exists("file_errors"):
        parts.append(warehouse.read("file_errors"))
    frame = assemble_quarantine(parts)
    warehouse.write("quarantine", frame)
    summary = frame.group_by("entity", "rule").len().sort("entity", "rule") if frame.height else frame
    return dg.MaterializeResult(
        metadata={
            "rows": frame.height,
            "unreadable_files": frame.filter(pl.col("rule") == "file").height,
            "by_entity_and_rule": _markdown(summary, rows=60),
            "examples": _markdown(frame.select("source_file", "line", "column", "value", "reason"), rows=10),
            "path": str(warehouse.path("quarantine")),
        }
    )
