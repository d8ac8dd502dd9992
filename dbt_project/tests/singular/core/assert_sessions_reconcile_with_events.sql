{#- Sessions and events agree: every session's count_events equals its events in fct_events.
    A daily run checks the sessions of the people its latest batch touched (fct_sessions
    replaces exactly those people's sessions), like the generic tests of fct_sessions
    (macros/uba_test_scope.sql); every session on --full-refresh or uba__full_data_tests. -#}
{#- (the scope needs the graph: only at execution, not while dbt parses) -#}
{%- set whole_tables = flags.FULL_REFRESH or var('uba__full_data_tests', false) or not execute -%}
{%- set people = '' if whole_tables
    else 'where ' ~ uba_test_scope_condition('__latest_batch_people__', none) -%}
with

event_counts as (

    select
        session_id,
        count(*) as count_events
    from {{ ref('fct_events') }}
    {{ people }}
    group by 1

),

sessions as (

    select session_id, count_events
    from {{ ref('fct_sessions') }}
    {{ people }}

)

select
    sessions.session_id,
    sessions.count_events,
    event_counts.count_events as counted_events
from sessions
full outer join event_counts
    on sessions.session_id = event_counts.session_id
where sessions.count_events is distinct from event_counts.count_events
