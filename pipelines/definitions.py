"""`defs`: every HoloCRM asset, check, job, schedule and sensor, loaded by workspace.yaml."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

# One module per domain under pipelines/assets/; each is imported by name so a typo fails loudly.
from pipelines.assets import (
    attachments,
    decisions,
    experiments,
    ingest,
    models,
    monitoring,
    nlq,
    outcomes,
    rl,
    semantic,
)
from pipelines.executors import executor_from_settings
from pipelines.io_manager import WarehouseIOManager
from pipelines.jobs import holocrm_all_job, holocrm_shards_job
from pipelines.resources import (
    EmbedderResource,
    ExportResource,
    LanceDBResource,
    MLflowResource,
    StorageResource,
)
from pipelines.runner import progress_logger_def
from pipelines.schedules import daily_refresh
from pipelines.sensors import new_export_sensor

ASSET_MODULES = [ingest, semantic, outcomes, models, nlq, rl, decisions, attachments, monitoring, experiments]


def build_resources(home: str = "", **overrides) -> dict:
    """Every resource of ``defs`` rooted at ``home`` (empty = HOLOCRM_HOME); ``overrides`` replace some."""
    return {
        "io_manager": WarehouseIOManager(home=home),
        "storage": StorageResource(home=home),
        "export": ExportResource(),
        "lancedb": LanceDBResource(),
        "mlflow": MLflowResource(),
        "embedder": EmbedderResource(),
        **overrides,
    }


all_assets = monitoring.with_freshness_policies(dg.load_assets_from_modules(ASSET_MODULES))
all_checks = dg.load_asset_checks_from_modules(ASSET_MODULES)


def materialize(
    selection,
    home: str = "",
    run_config: dict | None = None,
    batch: str | None = None,
    shards: list[int] | None = None,
    **resources,
):
    """Materialize ``selection`` (asset names, or a ``dg.AssetSelection``) of the whole graph in process, its
    inputs read from the warehouse under ``home``; ``resources`` replace the defaults (a LanceDB folder...).
    Partitioned assets run for every shard of ``batch`` (default: the newest export batch in the landing
    folder, else "adhoc"), or for ``shards`` of it (consecutive; ``[2]``: shard 2 alone). What the tests and benchmarks call to run part of the graph the way `holocrm run`
    runs all of it."""
    from holocrm_core.landing import export_batches as landed
    from holocrm_core.settings import HoloPaths
    from pipelines.partitions import BATCHES, batch_key, batch_shards, shard_range_tags

    if not isinstance(selection, dg.AssetSelection):
        selection = dg.AssetSelection.assets(*selection)
    # a multi-asset whose outputs are written together (staged_X + quarantine_X) runs whole
    selection = selection.required_multi_asset_neighbors()
    instance = dg.DagsterInstance.ephemeral()
    graph = defs.resolve_asset_graph()
    tags = {}
    if any(graph.get(key).partitions_def == batch_shards for key in selection.resolve(graph)):
        if batch is None:
            folders = landed((HoloPaths(Path(home)) if home else HoloPaths.default()).landing)
            batch = batch_key(folders[-1].name) if folders else "adhoc"
        instance.add_dynamic_partitions(BATCHES, [batch])
        tags = shard_range_tags(batch, shards)
    return dg.materialize(
        [*all_assets, *all_checks],
        selection=selection,
        resources=build_resources(home, **resources),
        run_config=run_config,
        instance=instance,
        tags=tags,
    )


defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[holocrm_all_job, holocrm_shards_job, monitoring.retrain_job, experiments.experiment_reports_job],
    schedules=[daily_refresh],
    sensors=[new_export_sensor, monitoring.decay_sensor, experiments.experiment_outcomes_sensor],
    resources=build_resources(),
    loggers={"progress": progress_logger_def()},
    executor=executor_from_settings(),  # HOLOCRM_EXECUTOR / settings [dagster] executor; None = Dagster's default
)
