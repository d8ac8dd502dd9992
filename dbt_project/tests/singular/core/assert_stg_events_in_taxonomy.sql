{#- Staged events the tracking plan (seed event_taxonomy) does not list. They are kept and
    flagged (is_planned_event = false) under UBA_UNKNOWN_EVENT_POLICY=flag, so this warns: a new
    event is seen, never lost. Add it to the plan to silence it. -#}
{{ config(severity='warn') }}
select
    stg_app__events.event_id,
    stg_app__events.event_name
from {{ ref('stg_app__events') }} as stg_app__events
left join {{ ref('event_taxonomy') }} as event_taxonomy
    on stg_app__events.event_name = event_taxonomy.event_name
where event_taxonomy.event_name is null
