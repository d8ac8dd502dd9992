{#- Events rolled up to (user, event day, day the event became available). An event is usable
    for a snapshot on date D only when event_ts < D and received_at < D; since D is a midnight,
    that is exactly available_date < D with available_date = the later of the two days.
    Incremental: the (user, event day) pairs with events written since this model last ran
    (new, re-stitched or re-cut; macros in uba_batches.sql) are deleted (the pre-hook) and
    recounted, so a run costs the days that changed. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{%- set top_event_types = uba_feature_event_types() -%}
{{ config(**uba_events_consumer_config('user_days')) }}

with events as (

    select
        events.user_id,
        events.event_name,
        events.event_ts,
        events.received_at,
        cast(events.event_ts as date) as event_date,
        events.revenue_usd
    from {{ sessionized }} as events
    {% if is_incremental() -%}
    inner join ({{ uba_changed_user_days(sessionized) }}) as changed
        on events.user_id = changed.user_id
        and cast(events.event_ts as date) = changed.event_date
    where true
        {{- feature_and_changed_days_from('events.event_ts', dbt.type_timestamp()) }}
    {%- endif %}

),

dated as (

    select
        *,
        case
            when cast(received_at as date) > event_date then cast(received_at as date)
            else event_date
        end as available_date
    from events

)

select
    user_id,
    event_date,
    available_date,
    cast(count(*) as bigint) as count_events,
    {% for event_type in top_event_types -%}
    cast(sum(case when event_name = '{{ event_type }}' then 1 else 0 end) as bigint)
        as count_{{ event_type }},
    {% endfor -%}
    cast(sum(case when {{ uba_is_purchase('event_name') }} then 1 else 0 end) as bigint)
        as count_purchases,
    {{ uba_exact_sum('revenue_usd') }} as sum_revenue_usd,
    {{ uba_exact_sum("case when " ~ uba_is_purchase('event_name') ~ " then revenue_usd else 0 end") }}
        as sum_purchase_revenue_usd,
    min(event_ts) as first_event_at,
    max(event_ts) as last_event_at,
    max(case when {{ uba_is_purchase('event_name') }} then event_ts end) as last_purchase_at
from dated
group by 1, 2, 3
{{- feature_stored_in_order('event_date') }}
