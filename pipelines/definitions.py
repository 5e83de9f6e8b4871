"""`defs`: every HoloCRM asset, check, job, schedule and sensor, loaded by workspace.yaml."""

from __future__ import annotations

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
from pipelines.jobs import holocrm_all_job
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


def build_resources(home: str = "") -> dict:
    return {
        "storage": StorageResource(home=home),
        "export": ExportResource(),
        "lancedb": LanceDBResource(),
        "mlflow": MLflowResource(),
        "embedder": EmbedderResource(),
    }


all_assets = monitoring.with_freshness_policies(dg.load_assets_from_modules(ASSET_MODULES))
all_checks = dg.load_asset_checks_from_modules(ASSET_MODULES)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[holocrm_all_job, monitoring.retrain_job, experiments.experiment_reports_job],
    schedules=[daily_refresh],
    sensors=[new_export_sensor, monitoring.decay_sensor, experiments.experiment_outcomes_sensor],
    resources=build_resources(),
    loggers={"progress": progress_logger_def()},
    executor=executor_from_settings(),  # HOLOCRM_EXECUTOR / settings [dagster] executor; None = Dagster's default
)
