{#- Every staged event type is in the tracking plan (seed event_taxonomy). -#}
select
    stg_app__events.event_id,
    stg_app__events.event_name
from {{ ref('stg_app__events') }} as stg_app__events
left join {{ ref('event_taxonomy') }} as event_taxonomy
    on stg_app__events.event_name = event_taxonomy.event_name
where event_taxonomy.event_name is null
