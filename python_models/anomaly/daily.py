"""Per-user-day activity from marts.fct_events, in DuckDB SQL (one pass, window functions).

"New" country / device means not seen on any earlier day of the same user, so the first day a
user is seen never counts as new. Deviation columns compare a day with the user's own trailing
baseline (up to `baseline_days` previous active days): z = (x - mean) / max(std, floor).
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

EVENTS_TABLE = "marts.fct_events"
ODD_HOURS_END = 6  # events at 00:00-05:59 UTC count as odd-hour activity

DAILY_SQL = """
with events as (
    select user_id, event_ts, event_date, event_name, country, device
    from {events_table}
    where user_id is not null
),

bursts as (
    select
        user_id,
        event_date,
        count(*) over (
            partition by user_id order by event_ts
            range between current row and interval 10 minutes following
        ) as events_next_10m
    from events
),

first_country as (
    select user_id, country, min(event_date) as first_date
    from events where country is not null group by 1, 2
),

first_device as (
    select user_id, device, min(event_date) as first_date
    from events where device is not null group by 1, 2
),

user_start as (
    select user_id, min(event_date) as first_active_date from events group by 1
),

daily as (
    select
        user_id,
        event_date as activity_date,
        count(*) as count_events,
        count(*) filter (where event_name = 'login') as count_logins,
        count(distinct country) as count_countries,
        count(distinct device) as count_devices,
        avg(case when hour(event_ts) < {odd_end} then 1.0 else 0.0 end) as share_odd_hour_events,
        min(hour(event_ts)) filter (where hour(event_ts) < {odd_end}) as first_odd_hour,
        count(*) filter (where event_name = 'password_reset') as count_password_resets,
        count(*) filter (where event_name = 'settings_changed') as count_settings_changed
    from events
    group by 1, 2
),

daily_bursts as (
    select user_id, event_date as activity_date, max(events_next_10m) as max_events_10m
    from bursts group by 1, 2
),

new_countries as (
    select
        first_country.user_id,
        first_country.first_date as activity_date,
        count(*) as count_new_countries,
        string_agg(first_country.country, ', ' order by first_country.country) as new_countries
    from first_country
    join user_start on first_country.user_id = user_start.user_id
    where first_country.first_date > user_start.first_active_date
    group by 1, 2
),

new_devices as (
    select
        first_device.user_id,
        first_device.first_date as activity_date,
        count(*) as count_new_devices,
        string_agg(first_device.device, ', ' order by first_device.device) as new_devices
    from first_device
    join user_start on first_device.user_id = user_start.user_id
    where first_device.first_date > user_start.first_active_date
    group by 1, 2
),

joined as (
    select
        daily.*,
        daily_bursts.max_events_10m,
        coalesce(new_countries.count_new_countries, 0) as count_new_countries,
        new_countries.new_countries,
        coalesce(new_devices.count_new_devices, 0) as count_new_devices,
        new_devices.new_devices
    from daily
    join daily_bursts using (user_id, activity_date)
    left join new_countries using (user_id, activity_date)
    left join new_devices using (user_id, activity_date)
),

baselines as (
    select
        *,
        count(*) over user_history as baseline_days,
        avg(count_events) over user_history as baseline_events,
        stddev_samp(count_events) over user_history as baseline_events_std,
        avg(max_events_10m) over user_history as baseline_burst,
        stddev_samp(max_events_10m) over user_history as baseline_burst_std,
        avg(share_odd_hour_events) over user_history as baseline_odd_share,
        avg(count_settings_changed + count_password_resets) over user_history as baseline_account
    from joined
    window user_history as (
        partition by user_id order by activity_date
        rows between {baseline_days} preceding and 1 preceding
    )
)

select
    user_id,
    activity_date,
    count_events::bigint as count_events,
    count_logins::bigint as count_logins,
    count_countries::bigint as count_countries,
    count_devices::bigint as count_devices,
    count_new_countries::bigint as count_new_countries,
    new_countries,
    count_new_devices::bigint as count_new_devices,
    new_devices,
    share_odd_hour_events,
    first_odd_hour,
    max_events_10m::bigint as max_events_10m,
    count_password_resets::bigint as count_password_resets,
    count_settings_changed::bigint as count_settings_changed,
    baseline_days::bigint as baseline_days,
    coalesce(baseline_events, count_events) as baseline_events,
    coalesce(
        (count_events - baseline_events) / greatest(coalesce(baseline_events_std, 0), 2.0), 0
    ) as z_events,
    coalesce(
        (max_events_10m - baseline_burst) / greatest(coalesce(baseline_burst_std, 0), 2.0), 0
    ) as z_burst,
    coalesce(share_odd_hour_events - baseline_odd_share, 0) as odd_share_increase,
    coalesce(
        count_settings_changed + count_password_resets - baseline_account, 0
    ) as account_changes_increase
from baselines
{where}
order by activity_date, user_id
"""

MODEL_COLUMNS = [
    "count_events",
    "count_logins",
    "count_countries",
    "count_devices",
    "count_new_countries",
    "count_new_devices",
    "share_odd_hour_events",
    "max_events_10m",
    "count_password_resets",
    "count_settings_changed",
    "z_events",
    "z_burst",
    "odd_share_increase",
    "account_changes_increase",
]


def user_day_activity(
    con: duckdb.DuckDBPyConnection,
    since: date | None = None,
    baseline_days: int = 28,
    events_table: str = EVENTS_TABLE,
) -> pl.DataFrame:
    """One row per (user_id, activity_date) with activity and deviation columns.

    Baselines always use the full history; `since` only filters the rows returned.
    """
    if baseline_days < 1:
        raise ValueError("baseline_days must be >= 1")
    where = "where activity_date >= ?" if since is not None else ""
    sql = DAILY_SQL.format(
        events_table=events_table,
        odd_end=ODD_HOURS_END,
        baseline_days=int(baseline_days),
        where=where,
    )
    return con.execute(sql, [since] if since is not None else []).pl()
