{#- One row per user and UTC day with events. Incremental (a consumer of
    int_events_sessionized, macros/uba_batches.sql): the (user, day) pairs that had events
    written since this model last ran, including the pairs a re-stitched event left, are
    deleted by the pre-hook and recounted from fct_events. So a late event, or a login that
    moves a device's month-old anonymous events to its person, reaches its day whatever the
    day's age (a lookback by received_at missed re-stitched days). A full build is stored in
    day order, so the pre-hook's delete skips the row groups before the earliest changed day. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config('user_days', day_column='activity_date')) }}

with events as (

    select events.*
    from {{ ref('fct_events') }} as events
    {% if is_incremental() -%}
    inner join ({{ uba_changed_user_days(sessionized) }}) as changed
        on events.user_id = changed.user_id
        and events.event_date = changed.event_date
    {%- endif %}

)

select
    user_id,
    event_date as activity_date,
    cast(count(*) as bigint) as count_events,
    cast(count(distinct session_id) as bigint) as count_sessions,
    cast(sum(case when {{ uba_is_purchase('event_name') }} then 1 else 0 end) as bigint)
        as count_purchases,
    {{ uba_exact_sum('revenue_usd') }} as revenue_usd,
    max(received_at) as max_received_at
from events
group by 1, 2
{{- feature_stored_in_order('activity_date') }}
