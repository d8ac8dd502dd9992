{#- No event lost or duplicated between the gate's output and the events mart:
    count(fct_events) = count(distinct event_id) in raw.events_validated. A daily run checks
    the newest load batches' events (macro uba_new_load_batches): each distinct event_id of
    their validated rows is in fct_events exactly once, so a new event lost or doubled fails
    while nothing is grouped over the whole history; whole tables on --full-refresh or
    uba__full_data_tests (a loss among old rows only is left to that run, as for the new-key
    unique tests, macros/uba_test_scope.sql). -#}
{%- set validated = source('app', 'events_validated') -%}
{%- set whole_tables = not execute or uba_whole_table_tests() -%}
{%- set new_loads = none if whole_tables else uba_new_load_batches(validated) -%}
with

{% if new_loads is none -%}
source_events as (

    {{ uba_distinct_count(validated, 'event_id', 'count_events') }}

),

mart_events as (

    select count(*) as count_events
    from {{ ref('fct_events') }}

)
{%- else -%}
new_event_ids as (

    select distinct event_id
    from {{ validated }}
    where {{ uba_in_key_set('load_id', new_loads) }}

),

source_events as (

    select count(*) as count_events
    from new_event_ids

),

mart_events as (

    select count(*) as count_events
    from {{ ref('fct_events') }}
    where {{ uba_in_key_set('event_id', 'select event_id from new_event_ids') }}

)
{%- endif %}

select
    source_events.count_events as source_count,
    mart_events.count_events as mart_count
from source_events
cross join mart_events
where source_events.count_events != mart_events.count_events
