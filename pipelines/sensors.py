"""Start the whole graph when a new export batch lands in HOLOCRM_HOME/landing.

Each batch folder becomes a partition of the ``export_batch`` dynamic partitions (``pipelines.partitions``):
the sensor adds every landed batch not yet known (so an older one can be backfilled shard by shard from the
UI or `dagster asset backfill`), and requests one run of the newest over all of its shards.
"""

import dagster as dg
from dagster import SensorEvaluationContext

from holocrm_core.landing import export_batches
from pipelines.jobs import holocrm_all_job
from pipelines.partitions import BATCHES, batch_key, shard_range_tags
from pipelines.partitions import export_batches as batch_partitions
from pipelines.resources import StorageResource


@dg.sensor(
    job=holocrm_all_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="A new folder of export files in the landing folder becomes an export_batch partition and "
    "starts a run over every shard of it.",
)
def new_export_sensor(context: SensorEvaluationContext, storage: StorageResource):
    batches = export_batches(storage.paths().landing)
    if not batches:
        return dg.SkipReason(f"no export in {storage.paths().landing}")
    unknown = sorted(
        {batch_key(b.name) for b in batches} - set(context.instance.get_dynamic_partitions(BATCHES))
    )
    added = [batch_partitions.build_add_request(unknown)] if unknown else []
    newest = batches[-1]
    marker = f"{newest.name}@{newest.stat().st_mtime_ns}"
    if marker == context.cursor:
        return dg.SensorResult(
            skip_reason=f"{newest.name} already ingested", dynamic_partitions_requests=added
        )
    context.update_cursor(marker)
    run = dg.RunRequest(
        run_key=marker,
        # the export is a resource: every asset that reads it (raw_export, attachments, outreach log) sees it
        run_config={"resources": {"export": {"config": {"export_dir": str(newest)}}}},
        tags={"holocrm/export": newest.name, **shard_range_tags(batch_key(newest.name))},
    )
    return dg.SensorResult(run_requests=[run], dynamic_partitions_requests=added)
