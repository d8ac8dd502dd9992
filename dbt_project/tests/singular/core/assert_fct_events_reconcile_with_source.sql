{#- No event lost or duplicated between the gate's output and the events mart:
    count(fct_events) = count(distinct event_id) in raw.events_validated. -#}
with

source_events as (

    select count(distinct event_id) as count_events
    from {{ source('app', 'events_validated') }}

),

mart_events as (

    select count(*) as count_events
    from {{ ref('fct_events') }}

)

select
    source_events.count_events as source_count,
    mart_events.count_events as mart_count
from source_events
cross join mart_events
where source_events.count_events != mart_events.count_events
