{#- Next event in the same session for every event (null at the session's last event);
    the base for transition probabilities and path n-grams. Order: event_ts, then event_id.
    Incremental (delete+insert on event_id): a run recomputes the sessions that hold an event
    written since this model last ran (int_events_sessionized's batches, macros in
    uba_batches.sql), under their new session_id and the one stored before (an event moved
    to another session leaves its old session's next-event columns stale otherwise). Each row
    carries the int_events_sessionized batch of the run that wrote it (batch_id), so the
    transition counts (int_event_paths_counted) recount only the days of rewritten rows: this
    model is a producer for them, as int_events_sessionized is for it. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{%- set model_config = uba_events_consumer_config('keys', unique_key='event_id') -%}
{%- do model_config.post_hook.append('{{ uba_forget_consumers_on_full_refresh() }}') -%}
{{ config(**model_config) }}

with

{% if is_incremental() -%}
changed_events as (

    {{ uba_changed_rows(sessionized, 'event_id, session_id') }}

),

changed_sessions as (

    select session_id from changed_events
    union
    select stored.session_id
    from {{ this }} as stored
    inner join changed_events
        on stored.event_id = changed_events.event_id

),

{% endif -%}
events as (

    select session_id, event_id, event_name, event_ts from {{ ref('fct_events') }}
    {%- if is_incremental() %}
    where session_id in (select session_id from changed_sessions)
    {%- endif %}

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
    row_number() over (partition by session_id order by event_ts, event_id) as position_in_session,
    cast(event_ts as date) as event_date,
    (select max(batch_id) from {{ sessionized }}) as batch_id
from events
