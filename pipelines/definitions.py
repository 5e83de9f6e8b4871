"""`defs`: every HoloCRM asset, check, job, schedule and sensor, loaded by workspace.yaml."""

from __future__ import annotations

import importlib

import dagster as dg

from pipelines.resources import EmbedderResource, LanceDBResource, MLflowResource, StorageResource

# One module per domain under pipelines/assets/ (ingest, semantic, outcomes, models, nlq, ...).
ASSET_MODULES = ["ingest", "semantic", "outcomes", "models", "nlq", "decisions", "rl"]


def _asset_modules():
    modules = []
    for name in ASSET_MODULES:
        try:
            modules.append(importlib.import_module(f"pipelines.assets.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"pipelines.assets.{name}":
                raise
    return modules


def build_resources(home: str = "") -> dict:
    return {
        "storage": StorageResource(home=home),
        "lancedb": LanceDBResource(),
        "mlflow": MLflowResource(),
        "embedder": EmbedderResource(),
    }


_modules = _asset_modules()
all_assets = dg.load_assets_from_modules(_modules)
all_checks = dg.load_asset_checks_from_modules(_modules)

from pipelines.jobs import holocrm_all_job  # noqa: E402
from pipelines.schedules import daily_refresh  # noqa: E402
from pipelines.sensors import new_export_sensor  # noqa: E402

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[holocrm_all_job],
    schedules=[daily_refresh],
    sensors=[new_export_sensor],
    resources=build_resources(),
)
