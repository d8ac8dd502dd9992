{#- Distinct (event name, product feature) pairs per user, event day and availability day, so
    "distinct ... in the last N days" can be counted without going back to single events. -#}
with events as (

    select
        user_id,
        event_name,
        feature,
        event_date,
        case
            when cast(received_at as date) > event_date then cast(received_at as date)
            else event_date
        end as available_date
    from {{ ref('fct_events') }}

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
