"""Ingest assets: export files in the landing folder -> raw_* -> staged_* canonical tables + quarantine."""


from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext
import polars as pl

from holocrm_core import schema
from holocrm_core.landing import resolve_export_dir
from holocrm_core.reconcile import reconcile
from pipelines.metadata import markdown_table
from pipelines.resources import StorageResource

GROUP = "ingest"


class ExportConfig(dg.Config):
    """Which export to ingest. Empty export_dir = the newest batch folder in HOLOCRM_HOME/landing."""

    export_dir: str = ""
    profile: str = ""  # generic, salesforce, hubspot, maven; empty = detected from the headers
    mapping: str = ""  # YAML mapping file describing a custom export


def _markdown(frame: pl.DataFrame, rows: int = 10, width: int = 60) -> dg.MetadataValue:
    return markdown_table(frame, rows=rows, width=width)


@dg.multi_asset(
    specs=[dg.AssetSpec(e.raw_asset, group_name=GROUP, description=f"Export rows of {e.plural}, as read (strings), "
                        "with the source file and line of each row.") for e in schema.REGISTRY],
    can_subset=False,
)
def raw_export(context: AssetExecutionContext, config: ExportConfig, storage: StorageResource):
    """Read every file of the export once with its source profile; unreadable files are reported, not fatal."""
    from holocrm_core.ingest import read_export

    export_dir = resolve_export_dir(storage.paths().landing, config.export_dir or None)
    context.log.info(f"reading export {export_dir}")
    raw = read_export(export_dir, profile=config.profile or None, mapping=config.mapping or None)
    warehouse = storage.warehouse()
    warehouse.write("file_errors", raw.errors)
    for report in raw.files:
        if report.error:
            context.log.warning(f"{report.path}: {report.error}")
    for e in schema.REGISTRY:
        entity = e.plural
        frame = raw.tables.get(entity)
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
                "custom_fields": ", ".join(raw.custom_fields.get(entity, [])) or "(none)",
                "unreadable_files": sum(1 for r in raw.files if r.error),
            },
        )


def _staged_asset(entity: str, parents: list[str]):
    record = schema.entity(entity)
    id_column = record.id_column
    key = record.staged_asset

    @dg.asset(
        name=key,
        group_name=GROUP,
        deps=[record.raw_asset, *[schema.entity(p).staged_asset for p in parents]],
        description=f"Canonical, validated {entity} (holocrm_core.schema); rejected rows go to quarantine.",
        check_specs=[
            dg.AssetCheckSpec("no_rows_lost", asset=key,
                              description="Per source file: rows read = rows staged + rows quarantined."),
            dg.AssetCheckSpec("unique_ids", asset=key, description=f"{id_column} is unique and never empty."),
            dg.AssetCheckSpec("referential_integrity", asset=key,
                              description="Every foreign key present points at a staged row."),
            dg.AssetCheckSpec("null_rates_within_bounds", asset=key,
                              description="Required columns are never null; the columns a usable export fills "
                                          "(schema.NULL_RATE_LIMITS) are null within their bounds.",
                              blocking=False),
        ],
    )
    def staged(context: AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
        from holocrm_core.ingest import stage_entity

        warehouse = storage.warehouse()
        raw = warehouse.read(record.raw_asset)
        # References are checked against parents the export carries; a parent with no file cannot be checked.
        known_ids = {p: warehouse.read(schema.entity(p).staged_asset)[schema.ID_COLUMN[p]] for p in parents
                     if warehouse.read(schema.entity(p).raw_asset).height}
        staged_frame, quarantined = stage_entity(entity, raw, known_ids)
        warehouse.write(key, staged_frame)
        warehouse.write(record.quarantine_table, quarantined)
        accounting = reconcile(raw, staged_frame, quarantined, id_column)
        ids = staged_frame[id_column]
        refs_ok, ref_detail = True, []
        for (child, column), parent in schema.REFERENCES.items():
            parent_ids = ids if parent == entity else known_ids.get(parent)
            if child != entity or column not in staged_frame.columns or parent_ids is None:
                continue
            dangling = staged_frame.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(parent_ids.implode()))
            refs_ok &= dangling.is_empty()
            ref_detail.append(f"{column}->{parent}: {dangling.height} dangling")
        null_rates = {c: round(staged_frame[c].null_count() / max(staged_frame.height, 1), 3)
                      for c in schema.ENTITIES[entity].names()}
        required_nulls = {c: null_rates[c] for c in schema.REQUIRED[entity] if null_rates[c] > 0}
        limits = schema.NULL_RATE_LIMITS.get(entity, {})
        too_sparse = {c: null_rates[c] for c, limit in limits.items() if null_rates[c] > limit} if staged_frame.height else {}
        by_rule = quarantined.group_by("rule").len().sort("len", descending=True) if quarantined.height else quarantined
        context.log.info(f"{entity}: {staged_frame.height} staged, {quarantined.height} quarantined")
        return dg.MaterializeResult(
            metadata={
                "rows": staged_frame.height,
                "quarantined": quarantined.height,
                "quarantined_by_rule": _markdown(by_rule),
                "custom_fields": ", ".join(schema.custom_columns(staged_frame)) or "(none)",
                "rows_by_file": _markdown(accounting, rows=50),
                "null_rates": dg.MetadataValue.json(null_rates),
                "preview": _markdown(staged_frame.select(staged_frame.columns[:6]), rows=5),
                "path": str(warehouse.path(key)),
            },
            check_results=[
                dg.AssetCheckResult(check_name="no_rows_lost", passed=bool(accounting["balanced"].all()),
                                    metadata={"files": _markdown(accounting, rows=50)}),
                dg.AssetCheckResult(check_name="unique_ids",
                                    passed=ids.null_count() == 0 and ids.n_unique() == staged_frame.height,
                                    metadata={"rows": staged_frame.height, "distinct_ids": ids.n_unique()}),
                dg.AssetCheckResult(check_name="referential_integrity", passed=refs_ok,
                                    metadata={"references": "; ".join(ref_detail) or "(none)"}),
                dg.AssetCheckResult(check_name="null_rates_within_bounds",
                                    passed=not required_nulls and not too_sparse,
                                    severity=dg.AssetCheckSeverity.WARN,
                                    metadata={"required_nulls": dg.MetadataValue.json(required_nulls),
                                              "mostly_empty": dg.MetadataValue.json(too_sparse)}),
            ],
        )

    return staged


_PARENTS = {
    "companies": [],
    "contacts": ["companies"],
    "deals": ["companies", "contacts"],
    "activities": ["contacts", "deals", "companies"],
    "attachments": ["activities"],
}
staged_assets = [_staged_asset(entity, _PARENTS[entity]) for entity in schema.STAGING_ORDER]
staged_companies, staged_contacts, staged_deals, staged_activities, staged_attachments = staged_assets


@dg.asset(
    group_name=GROUP,
    deps=list(schema.STAGED_TABLES),
    description="Every rejected row and unreadable file: source file, line, column, value and an actionable reason.",
)
def quarantine(context: AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    warehouse = storage.warehouse()
    parts = [warehouse.read(e.quarantine_table) for e in schema.REGISTRY]
    if warehouse.exists("file_errors"):
        parts.append(warehouse.read("file_errors"))
    frame = pl.concat([p.select(schema.QUARANTINE.names()).cast(dict(schema.QUARANTINE)) for p in parts],
                      how="vertical")
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
