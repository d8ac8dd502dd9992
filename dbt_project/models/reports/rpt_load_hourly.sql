{#- Load per UTC hour, the load forecast's input (python_models/load_forecast): events and
    distinct active persons, zero-filled from the first to the last hour with events. The last
    hour may still be filling up: is_complete is false for it (the forecast leaves it out).
    Incremental (a consumer of int_events_sessionized, macros/uba_batches.sql): the hours from
    the earlier of the first hour with an event written since it last ran and the stored last
    hour (complete now if later events came) are deleted (the pre-hook) and recounted from
    fct_events; the hours before hold the same events as before. -#}
-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**uba_events_consumer_config('rows',
    where="hour_ts >= {{ load_hourly_recounted_from() }}")) }}

with

events as (

    select user_id, event_ts from {{ ref('fct_events') }}
    {%- if is_incremental() %}
    where event_ts >= {{ load_hourly_recounted_from() }}
    {%- endif %}

),

bounds as (

    select
        {{ dbt.date_trunc('hour', 'min(event_ts)') }} as first_hour_ts,
        {{ dbt.date_trunc('hour', 'max(event_ts)') }} as last_hour_ts
    from events

),

hours as (

    select {{ dbt.dateadd('hour', 'integers.n', 'bounds.first_hour_ts') }} as hour_ts
    from ({{ mart_integers(5) }}) as integers
    cross join bounds
    where {{ dbt.dateadd('hour', 'integers.n', 'bounds.first_hour_ts') }} <= bounds.last_hour_ts

),

hourly as (

    select
        {{ dbt.date_trunc('hour', 'event_ts') }} as hour_ts,
        count(*) as count_events,
        count(distinct user_id) as count_active_users
    from events
    group by 1

),

final as (

    select
        cast(hours.hour_ts as {{ dbt.type_timestamp() }}) as hour_ts,
        cast(coalesce(hourly.count_events, 0) as bigint) as count_events,
        cast(coalesce(hourly.count_active_users, 0) as bigint) as count_active_users,
        hours.hour_ts < bounds.last_hour_ts as is_complete
    from hours
    cross join bounds
    left join hourly
        on hours.hour_ts = hourly.hour_ts

)

select * from final
