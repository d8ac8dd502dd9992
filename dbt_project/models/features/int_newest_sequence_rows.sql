{#- Per person, their newest row of ftr_user_event_sequences (the latest event_ts, then the
    largest event_id, as python_models/next_action reads it): the state the next-action scores
    start from, without the label (next_event_name: ftr_user_event_sequences' post-hook sets it
    on rows of people whose events did not change, which would leave a copy stale). A daily
    scoring reads these ~people rows instead of finding each person's newest among every event
    (at 10M events two scans of the 10M-row mart, ~2 s a day).

    Incremental, for the people whose events changed since this model last ran (delete of
    their rows, then their newest row): a changed person's newest event is at or after their
    earliest changed event (the re-cut rewrote their events from there on), so only the rows
    from that time are read (the smallest such time as a literal: the mart is stored in time
    order). A person who lost events to re-stitching may have their newest row before it:
    theirs are read from all their rows (only when such people exist). Nobody else's newest
    row changes: a row depends only on its person's earlier events. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{%- set sequences = ref('ftr_user_event_sequences') -%}
{{ config(**uba_events_consumer_config('people')) }}
{#- Every column of the mart but the label, read from the built mart (its columns follow the
    vars uba__sequence_length and uba__top_event_types); `*` while dbt only parses. -#}
{%- set columns = adapter.get_columns_in_relation(sequences) | map(attribute='name')
    | reject('equalto', 'next_event_name') | list if execute else [] -%}
{#- The rows each person's newest is picked from: a CTE of the changed people's on an
    incremental run, the mart itself (by relation name) on a full build: DuckDB materializes a
    CTE read more than once, and a copy of every row of the 10M-event mart took the full build
    18 s. -#}
{%- set candidates = 'candidates' if is_incremental() else sequences -%}

with

{% if is_incremental() -%}
changed as (

    {{ uba_changed_people(sessionized) }}

),

lost as (

    {{ feature_people_who_lost_events(sessionized) }}

),

{%- set lost_count = uba_cached_query_value('newest_sequence_rows_lost',
    'select count(*) from (' ~ feature_people_who_lost_events(sessionized) ~ ') as lost') %}
candidates as (

    select sequences.*
    from {{ sequences }} as sequences
    inner join changed
        on sequences.user_id = changed.user_id
        and sequences.event_ts >= changed.changed_from_ts
    where true
        {{- uba_and_at_or_after('sequences.event_ts',
            'select changed_from_ts from (' ~ uba_changed_people(sessionized) ~ ') as changed') }}
    {%- if lost_count is none or lost_count > 0 %}
        and sequences.user_id not in (select user_id from lost)
    union all
    select sequences.*
    from {{ sequences }} as sequences
    where sequences.user_id in (select user_id from lost)
    {%- endif %}

),

{%- endif %}

{#- A join to each person's newest time, not a window over every row: a hash aggregate. -#}
newest_times as (

    select user_id, max(event_ts) as newest_ts
    from {{ candidates }}
    group by user_id

),

newest_events as (

    select sequence_rows.user_id, max(sequence_rows.event_id) as event_id
    from {{ candidates }} as sequence_rows
    inner join newest_times
        on sequence_rows.user_id = newest_times.user_id
        and sequence_rows.event_ts = newest_times.newest_ts
    group by sequence_rows.user_id

)

select
    {%- for column in columns %}
    sequence_rows.{{ column }}{{ ',' if not loop.last }}
    {%- else %}
    sequence_rows.*
    {%- endfor %}
from {{ candidates }} as sequence_rows
inner join newest_events
    on sequence_rows.user_id = newest_events.user_id
    and sequence_rows.event_id = newest_events.event_id
