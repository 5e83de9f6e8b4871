"""Experiment assets: every experiment's report (verdict, intervals, SRM), re-run when field logs grow."""

import dagster as dg
import polars as pl

from pipelines.io_manager import optional_ins
from pipelines.resources import MLflowResource, StorageResource

GROUP = "experiments"


@dg.asset(
    group_name=GROUP,
    ins=optional_ins(["staged_deals"]),
    description="One report per experiment (HOLOCRM_HOME/experiments/reports/<name>.json + .png), read from the "
    "exposure, action and outcome logs; the plot is logged to MLflow (experiment holocrm-experiments).",
)
def experiment_report(
    context: dg.AssetExecutionContext,
    storage: StorageResource,
    mlflow: MLflowResource,
    staged_deals: pl.DataFrame | None,
) -> dg.MaterializeResult:
    from holocrm_core.experiments.service import ExperimentService

    paths = storage.paths()
    service = ExperimentService(paths.home)
    experiments = service.list()
    if not experiments:
        context.log.info("no experiments defined: nothing to report (`holocrm experiment create`)")
        return dg.MaterializeResult(metadata={"experiments": 0, "status": "nothing to do: no experiments"})
    deals = staged_deals
    verdicts, blocked = {}, []
    for experiment in experiments:
        report = service.report(experiment.name, deals)
        verdicts[experiment.name] = {
            "decision": report.decision,
            "units": report.units,
            "verdict": report.verdict,
        }
        if report.decision == "blocked":
            blocked.append(experiment.name)
        context.log.info(f"{experiment.name}: {report.verdict}")
    _log_to_mlflow(mlflow, service, verdicts)
    return dg.MaterializeResult(
        metadata={
            "experiments": len(experiments),
            "blocked_by_sample_ratio": ", ".join(blocked) or "none",
            "verdicts": dg.MetadataValue.json(verdicts),
            "reports": dg.MetadataValue.path(str(service.store.root / "reports")),
        }
    )


def _log_to_mlflow(mlflow: MLflowResource, service, verdicts: dict) -> None:
    import mlflow as mlflow_client

    from holocrm_core.registry import ensure_experiment

    mlflow.configure()
    experiment_id = ensure_experiment("holocrm-experiments")
    with mlflow_client.start_run(experiment_id=experiment_id, run_name="experiment_report"):
        for name, verdict in verdicts.items():
            mlflow_client.set_tag(f"{name}.decision", verdict["decision"])
            png = service.store.root / "reports" / f"{name}.png"
            if png.exists():
                mlflow_client.log_artifact(str(png), artifact_path="reports")


experiment_reports_job = dg.define_asset_job(
    "experiment_reports", selection=dg.AssetSelection.assets(experiment_report)
)


@dg.sensor(
    job=experiment_reports_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="New lines in the exposure, action or outcome log re-run the experiment reports.",
)
def experiment_outcomes_sensor(context: dg.SensorEvaluationContext, storage: StorageResource):
    logs = storage.paths().logs
    sizes = [
        (logs / name).stat().st_size if (logs / name).exists() else 0
        for name in ("exposures.ndjson", "actions.ndjson", "outcomes.ndjson")
    ]
    marker = ":".join(map(str, sizes))
    if not any(sizes):
        return dg.SkipReason("no exposures or outcomes logged yet")
    if marker == context.cursor:
        return dg.SkipReason("no new exposures or outcomes since the last report")
    context.update_cursor(marker)
    return dg.RunRequest(run_key=f"experiments-{marker}")
