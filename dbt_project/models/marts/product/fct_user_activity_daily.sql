{{ config(
    materialized=uba_incremental_unless_spark(),
    incremental_strategy='delete+insert',
    unique_key='activity_date',
) }}
{#- Incremental by day: every run rebuilds each whole day that has an event received after the
    stored high-water mark minus uba__late_event_lookback_days, so late arrivals (whatever their
    event_ts) land in the right day. -#}
with events as (

    select * from {{ ref('fct_events') }}
    {% if is_incremental() -%}
    where event_date in (
        select distinct event_date from {{ ref('fct_events') }}
        where received_at > (
            select {{ dbt.dateadd('day', -1 * var('uba__late_event_lookback_days'),
                'max(max_received_at)') }}
            from {{ this }}
        )
    )
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
