{#- Distinct (event name, product feature) pairs per user, event day and availability day, so
    "distinct ... in the last N days" can be counted without going back to single events.
    Incremental like int_feature_user_days: the (user, event day) pairs with events written
    since this model last ran are deleted (the pre-hook) and recounted. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config('user_days')) }}

with events as (

    select
        events.user_id,
        events.event_name,
        events.feature,
        cast(events.event_ts as date) as event_date,
        case
            when cast(events.received_at as date) > cast(events.event_ts as date)
                then cast(events.received_at as date)
            else cast(events.event_ts as date)
        end as available_date
    from {{ sessionized }} as events
    {% if is_incremental() -%}
    inner join ({{ uba_changed_user_days(sessionized) }}) as changed
        on events.user_id = changed.user_id
        and cast(events.event_ts as date) = changed.event_date
    where true
        {{- feature_and_changed_days_from('events.event_ts', dbt.type_timestamp()) }}
    {%- endif %}

)

select
    user_id,
    event_date,
    available_date,
    event_name,
    feature,
    cast(count(*) as bigint) as count_events
from events
group by 1, 2, 3, 4, 5
{{- feature_stored_in_order('event_date') }}
