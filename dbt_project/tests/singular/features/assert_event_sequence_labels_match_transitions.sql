{#- The next-action label re-cuts sessions from fct_events (macro uba_sessionize); it must agree
    with the transition mart built on the marts' sessions: the same next event where both know
    it, and 'session_end' exactly where the transition mart has no next event. Returns the rows
    that disagree. A daily run checks the transition rows it wrote (their batch_id: the events
    of every session that changed, whose sequence rows the same run replayed), like the generic
    tests (macros/uba_test_scope.sql), and the sequence rows on or after the first day of
    those transition rows (a redundant bound: both marts carry the event's own day, so the
    matched rows are the same, but the scan skips the older row groups of the sequences,
    stored in time order); whole tables on --full-refresh or uba__full_data_tests, and while
    the latest batch is every row (a first build), as the generic tests. Whole tables (a
    first build: two 10M-row marts at 10M events) are first compared whole
    (uba_same_rows_by_digest): each event with its label, 'session_end' and an open session's
    null both standing for no next event, against each transition with its next event; only
    when they differ does the join run to return the rows that disagree. -#}
{%- set sequences = ref('ftr_user_event_sequences') -%}
{%- set transitions = ref('fct_event_transitions') -%}
{#- (the scope needs the graph: only at execution, not while dbt parses) -#}
{%- set whole_tables = not execute or uba_whole_table_tests()
    or uba_latest_batch_is_everything('__latest_batch__') -%}
select
    sequences.event_id,
    sequences.next_event_name,
    transitions.next_event_name as transition_next_event_name
from (
    select * from {{ sequences }}
    {%- if whole_tables %}
    where not {{ uba_same_rows_by_digest(
        sequences, "event_id, case when next_event_name != 'session_end' then next_event_name end",
        transitions, 'event_id, next_event_name') }}
    {%- endif %}
) as sequences
inner join (
    select * from {{ transitions }}
    {%- if not whole_tables %}
    where {{ uba_test_scope_condition('__latest_batch__', transitions) }}
    {%- endif %}
) as transitions
    on sequences.event_id = transitions.event_id
where sequences.next_event_name is not null
    {%- if not whole_tables %}
    and sequences.event_date >= {{ uba_run_time_value('select min(event_date) from '
        ~ transitions ~ ' where batch_id = (select max(batch_id) from ' ~ transitions ~ ')') }}
    {%- endif %}
    and (
        (sequences.next_event_name = 'session_end' and transitions.next_event_name is not null)
        or (
            sequences.next_event_name != 'session_end'
            and coalesce(transitions.next_event_name, '') != sequences.next_event_name
        )
    )
