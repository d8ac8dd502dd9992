{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    on_schema_change='fail',
) }}
{#- Feature family "sessions": sessions in the recent window (uba__feature_recent_days) before
    each snapshot. They are re-cut per snapshot from the events visible then (event_ts and
    received_at before as_of_date), with the very rule of int_events_sessionized (macro
    uba_sessionize: timeout gap, end events, midnight split, max-length cap), so an event that
    arrives late cannot merge or split the sessions of an earlier snapshot. A session that
    began before the window counts from its first event inside it. -#}
{%- set recent_days = var('uba__feature_recent_days') | int -%}

with snapshot_dates as (

    {{ feature_snapshot_dates() }}

),

events as (

    select
        user_id,
        event_id,
        event_name,
        event_ts,
        received_at
    from {{ ref('fct_events') }}

),

visible_events as (

    select
        events.user_id,
        snapshot_dates.as_of_date,
        events.event_id,
        events.event_name,
        events.event_ts
    from events
    inner join snapshot_dates
        on events.event_ts < snapshot_dates.as_of_date
        and events.received_at < snapshot_dates.as_of_date
        and events.event_ts
            >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}

),

sessionized as (

    {{ uba_sessionize('visible_events', partition_by=['user_id', 'as_of_date'], numbered=false) }}

),

sessions as (

    select
        user_id,
        as_of_date,
        stretch_number,
        max_length_window,
        {{ dbt.datediff('min(event_ts)', 'max(event_ts)', 'second') }} as duration_seconds
    from sessionized
    group by 1, 2, 3, 4

),

final as (

    select
        user_id,
        as_of_date,
        cast(count(*) as bigint) as count_sessions_{{ recent_days }}d,
        cast(avg(duration_seconds) as {{ uba_type_double() }})
            as avg_session_duration_seconds_{{ recent_days }}d,
        cast(max(duration_seconds) as {{ uba_type_double() }})
            as max_session_duration_seconds_{{ recent_days }}d
    from sessions
    group by 1, 2

)

select * from final
