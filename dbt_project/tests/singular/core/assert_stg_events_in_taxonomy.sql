{#- Staged events the tracking plan (seed event_taxonomy) does not list. They are kept and
    flagged (is_planned_event = false) under UBA_UNKNOWN_EVENT_POLICY=flag, so this warns: a new
    event is seen, never lost. Add it to the plan to silence it. A daily run checks the rows
    staged for the newest load batches (staging only appends: macros/uba_test_scope.sql);
    every row on --full-refresh or uba__full_data_tests. -#}
{{ config(severity='warn') }}
{%- set staged = ref('stg_app__events') -%}
{%- set whole_tables = not execute or uba_whole_table_tests() -%}
select
    stg_app__events.event_id,
    stg_app__events.event_name
from {{ staged }} as stg_app__events
left join {{ ref('event_taxonomy') }} as event_taxonomy
    on stg_app__events.event_name = event_taxonomy.event_name
where event_taxonomy.event_name is null
    {%- if not whole_tables %}
    and {{ uba_test_scope_condition('__new_loads__', staged) }}
    {%- endif %}
