{#- Next event in the same session for every event (null at the session's last event);
    the base for transition probabilities and path n-grams. Order: event_ts, then event_id. -#}
with events as (

    select session_id, event_id, event_name, event_ts from {{ ref('fct_events') }}

)

select
    event_id,
    session_id,
    event_name,
    lead(event_name, 1) over (
        partition by session_id order by event_ts, event_id
    ) as next_event_name,
    lead(event_name, 2) over (
        partition by session_id order by event_ts, event_id
    ) as second_next_event_name,
    row_number() over (partition by session_id order by event_ts, event_id) as position_in_session
from events
