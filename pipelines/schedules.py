"""A daily refresh of the whole graph (new exports, retraining on newly closed outcomes)."""

import dagster as dg

from pipelines.jobs import holocrm_all_job

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job=holocrm_all_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
