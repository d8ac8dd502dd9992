"""Schedules (UTC): daily incremental refresh and scoring, weekly retraining."""

import dagster as dg

from orchestration.jobs import daily_refresh_job, retrain_job

daily_refresh_schedule = dg.ScheduleDefinition(
    name="daily_refresh_schedule",
    job=daily_refresh_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
)

weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain_schedule",
    job=retrain_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
)
