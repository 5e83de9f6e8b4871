"""Start the whole graph when a new export batch lands in HOLOCRM_HOME/landing."""

import dagster as dg
from dagster import SensorEvaluationContext

from holocrm_core.landing import export_batches
from pipelines.jobs import holocrm_all_job
from pipelines.resources import StorageResource


@dg.sensor(
    job=holocrm_all_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="A new folder of export files in the landing folder starts a run on it.",
)
def new_export_sensor(context: SensorEvaluationContext, storage: StorageResource):
    batches = export_batches(storage.paths().landing)
    if not batches:
        return dg.SkipReason(f"no export in {storage.paths().landing}")
    newest = batches[-1]
    marker = f"{newest.name}@{newest.stat().st_mtime_ns}"
    if marker == context.cursor:
        return dg.SkipReason(f"{newest.name} already ingested")
    context.update_cursor(marker)
    return dg.RunRequest(
        run_key=marker,
        # the export is a resource: every asset that reads it (raw_export, attachments, outreach log) sees it
        run_config={"resources": {"export": {"config": {"export_dir": str(newest)}}}},
        tags={"holocrm/export": newest.name},
    )
