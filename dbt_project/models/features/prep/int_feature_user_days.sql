{#- Events rolled up to (user, event day, day the event became available). An event is usable
    for a snapshot on date D only when event_ts < D and received_at < D; since D is a midnight,
    that is exactly available_date < D with available_date = the later of the two days. -#}
{%- set top_event_types = var('uba__top_event_types') -%}

with events as (

    select
        user_id,
        event_name,
        event_ts,
        received_at,
        event_date,
        revenue_usd
    from {{ ref('fct_events') }}

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
    cast(sum(case when event_name = 'purchase' then 1 else 0 end) as bigint) as count_purchases,
    {{ uba_exact_sum('revenue_usd') }} as sum_revenue_usd,
    {{ uba_exact_sum("case when event_name = 'purchase' then revenue_usd else 0 end") }}
        as sum_purchase_revenue_usd,
    min(event_ts) as first_event_at,
    max(event_ts) as last_event_at,
    max(case when event_name = 'purchase' then event_ts end) as last_purchase_at
from dated
group by 1, 2, 3
