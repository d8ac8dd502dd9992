{#- How often each event opens and closes a session. -#}
with sessions as (

    select entry_event_name, exit_event_name from {{ ref('fct_sessions') }}

),

entries as (

    select entry_event_name as event_name, count(*) as entry_sessions from sessions group by 1

),

exits as (

    select exit_event_name as event_name, count(*) as exit_sessions from sessions group by 1

)

select
    coalesce(entries.event_name, exits.event_name) as event_name,
    cast(coalesce(entries.entry_sessions, 0) as bigint) as entry_sessions,
    cast(coalesce(exits.exit_sessions, 0) as bigint) as exit_sessions
from entries
full outer join exits on entries.event_name = exits.event_name
