{#- Sessions and events agree: every session's count_events equals its events in fct_events. -#}
with

event_counts as (

    select
        session_id,
        count(*) as count_events
    from {{ ref('fct_events') }}
    group by 1

)

select
    fct_sessions.session_id,
    fct_sessions.count_events,
    event_counts.count_events as counted_events
from {{ ref('fct_sessions') }} as fct_sessions
full outer join event_counts
    on fct_sessions.session_id = event_counts.session_id
where fct_sessions.count_events is distinct from event_counts.count_events
