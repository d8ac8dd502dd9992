{#- Sessions and events agree: every session's count_events equals its events in fct_events.
    A daily run checks the sessions that start at or after the earliest event of
    int_events_sessionized's latest batch: that batch re-cut each of its people from a session
    start (its first row for them), so every session either table wrote in the run starts
    there, with all its events. The events are read from a session's maximum length before that
    bound, so a session that began before it (untouched, its later events included) is known
    by its first event and left out. Both tables are stored in time order: DuckDB reads the
    days from the bound on, not the history (10M events: ~1 s a day). Whole tables on a first
    build, --full-refresh and uba__full_data_tests (macros/uba_test_scope.sql). -#}
{%- set sessionized = uba_node_relation('int_events_sessionized') if execute else none -%}
{%- set whole_tables = not execute or uba_whole_table_tests()
    or load_relation(sessionized) is none or uba_holds_a_full_build_only() -%}
with

{% if whole_tables -%}
event_counts as (

    select
        session_id,
        count(*) as count_events
    from {{ ref('fct_events') }}
    group by 1

),

sessions as (

    select session_id, count_events
    from {{ ref('fct_sessions') }}

)
{%- else -%}
{#- the earliest event the latest batch wrote, written in as a literal by the daily replay -#}
{%- set bound = uba_run_time_value('select min(event_ts) from ' ~ sessionized
    ~ ' where batch_id = (select max(batch_id) from ' ~ sessionized ~ ')') -%}
event_counts as (

    select
        session_id,
        count(*) as count_events
    from {{ ref('fct_events') }}
    where event_ts >= {{ dbt.dateadd('minute', -var('uba__session_max_length_minutes'), bound) }}
    group by 1
    having min(event_ts) >= {{ bound }}

),

sessions as (

    select session_id, count_events
    from {{ ref('fct_sessions') }}
    where session_started_at >= {{ bound }}

)
{%- endif %}

select
    sessions.session_id,
    sessions.count_events,
    event_counts.count_events as counted_events
from sessions
full outer join event_counts
    on sessions.session_id = event_counts.session_id
where sessions.count_events is distinct from event_counts.count_events
