{#- Per-user-day activity for the anomaly model (python_models/anomaly), from the events of
    int_events_sessionized. "New" country / device = not seen on any earlier day of the same
    user, so the first day a user is seen never counts as new. Deviation columns compare a day
    with the user's own trailing baseline (up to uba__anomaly_baseline_days previous active
    days): z = (x - mean) / max(std, uba__anomaly_z_std_floor). Bursts: the most events starting
    in any 10-minute window (the column name max_events_10m carries the length), over an exact
    microsecond key. Incremental: the people whose events changed since this model last ran
    (macros in uba_batches.sql) are deleted (the pre-hook) and recomputed from their whole
    history, which the baselines and "new" flags need. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config('people')) }}
{%- set baseline_days = var('uba__anomaly_baseline_days') | int -%}
{%- set odd_hours_end = var('uba__anomaly_odd_hours_end') | int -%}
{%- set burst_microseconds = 10 * 60 * 1000000 -%}
{%- set std_floor = var('uba__anomaly_z_std_floor') | float -%}
{%- set event_hour = 'cast(extract(hour from event_ts) as integer)' -%}

{#- Not materialized: read five times, and a copy of every event would cost more than five
    scans of a few columns. -#}
with events as {{ uba_cte_not_materialized() }} (

    select
        user_id,
        event_ts,
        cast(event_ts as date) as event_date,
        event_name,
        country,
        device,
        {{ event_hour }} as event_hour,
        {{ uba_epoch_microseconds('event_ts') }} as event_us
    from {{ sessionized }}
    where user_id is not null
    {%- if is_incremental() %}
        and user_id in (
            select user_id from ({{ uba_changed_people(sessionized) }}) as changed
        )
    {%- endif %}

),

bursts as (

    select
        user_id,
        event_date,
        count(*) over (
            partition by user_id
            order by event_us
            range between current row and {{ burst_microseconds }} following
        ) as events_in_burst_window
    from events

),

first_country as (

    select user_id, country, min(event_date) as first_date
    from events
    where country is not null
    group by 1, 2

),

first_device as (

    select user_id, device, min(event_date) as first_date
    from events
    where device is not null
    group by 1, 2

),

user_start as (

    select user_id, min(event_date) as first_active_date
    from events
    group by 1

),

daily as (

    select
        user_id,
        event_date as activity_date,
        count(*) as count_events,
        sum(case when event_name = 'login' then 1 else 0 end) as count_logins,
        count(distinct country) as count_countries,
        count(distinct device) as count_devices,
        avg(case when event_hour < {{ odd_hours_end }} then 1.0 else 0.0 end)
            as share_odd_hour_events,
        min(case when event_hour < {{ odd_hours_end }} then event_hour end) as first_odd_hour,
        sum(case when event_name = 'password_reset' then 1 else 0 end) as count_password_resets,
        sum(case when event_name = 'settings_changed' then 1 else 0 end)
            as count_settings_changed
    from events
    group by 1, 2

),

daily_bursts as (

    select user_id, event_date as activity_date, max(events_in_burst_window) as max_events_burst
    from bursts
    group by 1, 2

),

new_countries as (

    select
        first_country.user_id,
        first_country.first_date as activity_date,
        count(*) as count_new_countries,
        {{ dbt.listagg('first_country.country', "', '", 'order by first_country.country') }}
            as new_countries
    from first_country
    inner join user_start
        on first_country.user_id = user_start.user_id
    where first_country.first_date > user_start.first_active_date
    group by 1, 2

),

new_devices as (

    select
        first_device.user_id,
        first_device.first_date as activity_date,
        count(*) as count_new_devices,
        {{ dbt.listagg('first_device.device', "', '", 'order by first_device.device') }}
            as new_devices
    from first_device
    inner join user_start
        on first_device.user_id = user_start.user_id
    where first_device.first_date > user_start.first_active_date
    group by 1, 2

),

joined as (

    select
        daily.*,
        daily_bursts.max_events_burst,
        coalesce(new_countries.count_new_countries, 0) as count_new_countries,
        new_countries.new_countries,
        coalesce(new_devices.count_new_devices, 0) as count_new_devices,
        new_devices.new_devices
    from daily
    inner join daily_bursts
        on daily.user_id = daily_bursts.user_id
        and daily.activity_date = daily_bursts.activity_date
    left join new_countries
        on daily.user_id = new_countries.user_id
        and daily.activity_date = new_countries.activity_date
    left join new_devices
        on daily.user_id = new_devices.user_id
        and daily.activity_date = new_devices.activity_date

),

{#- Windows spelled out in each OVER (Snowflake has no named WINDOW clause). -#}
{%- set user_history = 'partition by user_id order by activity_date rows between ' ~ baseline_days ~ ' preceding and 1 preceding' %}
baselines as (

    select
        joined.*,
        count(*) over ({{ user_history }}) as baseline_days,
        avg(count_events) over ({{ user_history }}) as baseline_events,
        stddev_samp(count_events) over ({{ user_history }}) as baseline_events_std,
        avg(max_events_burst) over ({{ user_history }}) as baseline_burst,
        stddev_samp(max_events_burst) over ({{ user_history }}) as baseline_burst_std,
        avg(share_odd_hour_events) over ({{ user_history }}) as baseline_odd_share,
        avg(count_settings_changed + count_password_resets) over ({{ user_history }})
            as baseline_account
    from joined

),

final as (

    select
        user_id,
        activity_date,
        cast(count_events as bigint) as count_events,
        cast(count_logins as bigint) as count_logins,
        cast(count_countries as bigint) as count_countries,
        cast(count_devices as bigint) as count_devices,
        cast(count_new_countries as bigint) as count_new_countries,
        new_countries,
        cast(count_new_devices as bigint) as count_new_devices,
        new_devices,
        cast(share_odd_hour_events as {{ uba_type_double() }}) as share_odd_hour_events,
        cast(first_odd_hour as bigint) as first_odd_hour,
        cast(max_events_burst as bigint) as max_events_10m,
        cast(count_password_resets as bigint) as count_password_resets,
        cast(count_settings_changed as bigint) as count_settings_changed,
        cast(baseline_days as bigint) as baseline_days,
        cast(coalesce(baseline_events, count_events) as {{ uba_type_double() }})
            as baseline_events,
        cast(coalesce(
            (count_events - baseline_events)
            / greatest(coalesce(baseline_events_std, 0), {{ std_floor }}), 0
        ) as {{ uba_type_double() }}) as z_events,
        cast(coalesce(
            (max_events_burst - baseline_burst)
            / greatest(coalesce(baseline_burst_std, 0), {{ std_floor }}), 0
        ) as {{ uba_type_double() }}) as z_burst,
        cast(coalesce(share_odd_hour_events - baseline_odd_share, 0)
            as {{ uba_type_double() }}) as odd_share_increase,
        cast(coalesce(
            count_settings_changed + count_password_resets - baseline_account, 0
        ) as {{ uba_type_double() }}) as account_changes_increase,
        cast({{ baseline_days }} as integer) as baseline_window_days
    from baselines

)

select * from final
