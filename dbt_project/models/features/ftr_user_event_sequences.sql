{#- The next-action model's input: one row per event of a person, describing the sequence up to
    and including that event (the last uba__sequence_length events and their gaps, the session
    so far, the person's event mix so far, the time of day) and the label: the next event in
    the same session, 'session_end' when the session ended there, null while it may still be
    open. Point in time by construction: every feature is a window over the person's events
    ordered by (event_ts, event_id) that ends at the current row, so a row never sees a later
    event; only the label looks ahead. The sessions are int_events_sessionized's own (its
    session_index, event_index_in_session, session_started_at and seconds_since_previous: the
    sessions of fct_sessions and fct_event_transitions), read, not re-cut. The scoring service
    computes these columns for posted events in numpy (python_models/service/features.py,
    settings read from the same dbt vars), held equal to int_events_sessionized's and this
    model's compiled SQL by tests/unit/test_service_features.py (edge-case timelines) and
    checked on sampled rows of each publication it picks up.

    Incremental (delete+insert on event_id), for the people whose events changed since this
    model last ran (macros in uba_batches.sql): a row depends only on its person's earlier
    events, its label on the session's next event and on the data's end. So each such person
    is replayed from a restart event, a session start before which nothing changed: the first
    row int_events_sessionized rewrote for them (it re-cuts a person from a stretch start:
    macro uba_recut_restart_before_change), read from that model's batch, not looked up in the
    history; the rows before it keep their features and labels. The replay reads
    uba__sequence_length - 1 context events before the restart (for the lags and the gap) and
    carries the counts from before them (the stored counters and shares of the event just
    before the restart and of the first context event); a person whose restart is their first
    event, or without a stored row before it (back after a consent withdrawal), is replayed
    whole. Other people's rows change only where the data's end passes a session timeout: the
    post-hook labels them 'session_end'. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{%- set sequence_length = var('uba__sequence_length') | int -%}
{%- set event_types = uba_feature_event_types() -%}
{%- set timeout_seconds = var('uba__session_timeout_minutes') * 60 -%}
{#- The gap from a stored row to its farthest previous event in the sequence. -#}
{%- set farthest_gap -%}
    greatest(0{% for i in range(1, sequence_length) %}, restart.seconds_since_previous_event_{{ i }}{% endfor %})
{%- endset -%}
{%- if sequence_length < 2 -%}
    {{ exceptions.raise_compiler_error("uba__sequence_length must be at least 2") }}
{%- endif -%}
{%- set model_config = uba_events_consumer_config('keys', unique_key='event_id') -%}
{%- do model_config.post_hook.insert(0, '{{ uba_write_later_parts() }}') -%}
{%- do model_config.post_hook.append(
    "{% if is_incremental() %}update {{ this }} set next_event_name = 'session_end' "
    ~ "where next_event_name is null and "
    ~ "{{ uba_epoch_seconds('event_ts') }} + " ~ timeout_seconds ~ " < (select "
    ~ "{{ uba_epoch_seconds('max(event_ts)') }} from {{ ref('int_events_sessionized') }}){% endif %}") -%}
{%- do model_config.update({'meta': {'uba_replaced_from': 'event_ts'}}) -%}
{{ config(**model_config) }}
{#- The events replayed: every stored one on a full build (read by relation name: a CTE read
    twice is materialized), a CTE of the changed people's on an incremental run. -#}
{%- set events = 'events' if is_incremental() else sessionized -%}
{%- set event_columns = [
    'user_id', 'event_id', 'event_name', 'event_ts', 'session_index', 'event_index_in_session',
    'session_started_at', 'seconds_since_previous'] -%}
{#- A full build on DuckDB is written in parts of people when the events outgrow the pool
    (macros/uba_time_slices.sql, var uba__full_build_event_rows_per_gib): at 10M events in a
    1.5 GB pool one statement spilled 2 GiB and took 35.5 s, 3 parts nothing and 28.9 s. The
    statement below once per part, its windows over its people's events (each person's rows are
    in one part); every other build is one part. -#}
{%- set parts = 1 if is_incremental()
    else uba_person_parts(sessionized, 'uba__full_build_event_rows_per_gib') -%}
{%- set statements = [] -%}
{%- for part in range(parts) -%}
{%- set statement -%}
with

{% if is_incremental() -%}
{#- Per changed person the first row int_events_sessionized rewrote since this model last ran:
    a stretch start (that model re-cuts a person from one: the latest before the change, or
    the change itself when the event before it is more than the timeout earlier), with none of
    the person's events before it changed, so the rows before it keep their features and
    labels. A person who only lost events may have none and keeps their rows: a lost event's
    row is replaced under its new person, and with none of theirs rewritten, their event
    before it lies more than the timeout earlier (no label of theirs named it). -#}
changed as (

    {{ uba_changed_rows(sessionized, 'user_id, event_id, event_ts, seconds_since_previous') }}

),

{#- Aggregates, not a window: DuckDB then sizes the joins below right (with a window it built
    the replay's hash table from every stored event). -#}
restart_times as (

    select user_id, min(event_ts) as restart_ts
    from changed
    group by user_id

),

{#- Of the events at the restart's time the first (smallest event_id) holds the gap to the
    event before (null for a person's first event), the others 0. -#}
restarts as (

    select
        changed.user_id,
        restart_times.restart_ts,
        min(changed.event_id) as restart_event_id,
        case
            when count(*) = count(changed.seconds_since_previous)
            then max(changed.seconds_since_previous)
        end as restart_gap
    from changed
    inner join restart_times
        on changed.user_id = restart_times.user_id
        and changed.event_ts = restart_times.restart_ts
    group by changed.user_id, restart_times.restart_ts

),

{#- The stored row of the event just before each restart (none for a person's first event): it
    lies restart_gap before the restart (plus a second for the gap's rounding). -#}
anchors as (

    select *
    from (
        select
            anchor.*,
            row_number() over (
                partition by anchor.user_id order by anchor.event_ts desc, anchor.event_id desc
            ) as recency
        from restarts
        {#- This table is stored in time order (full build; later runs append), and DuckDB
            applies a join's time conditions, at their smallest bound, to skip the row groups
            before it. #}
        inner join {{ this }} as anchor
            on restarts.user_id = anchor.user_id
            and anchor.event_ts <= restarts.restart_ts
            and anchor.event_ts >= {{ dbt.dateadd(
                'second', '-1 - cast(ceil(restarts.restart_gap) as bigint)', 'restarts.restart_ts') }}
        where (anchor.event_ts, anchor.event_id)
            < (restarts.restart_ts, restarts.restart_event_id)
    ) as ranked
    where recency = 1

),

{#- From the stored rows: the restart's position and the first context event's counters. The
    person's count of a type up to the context event is its stored share times its stored
    event count (a double holds count / n exactly enough to round back), so the events before
    the replay are not read again. -#}
resume_points as (

    select
        restart.user_id,
        restart.count_events_so_far + 1 as restart_event_number,
        context.event_ts as context_ts,
        context.event_id as context_event_id,
        context.count_events_so_far - 1 as events_before_context
        {%- for event_type in event_types %},
        cast(round(context.share_{{ event_type }}_so_far * context.count_events_so_far) as bigint)
            - case when context.event_name = '{{ event_type }}' then 1 else 0 end
            as before_{{ event_type }}
        {%- endfor %}
    from anchors as restart
    {#- the context event lies within the anchor row's gap to its farthest previous event #}
    inner join {{ this }} as context
        on restart.user_id = context.user_id
        and context.count_events_so_far
            = greatest(restart.count_events_so_far + 1 - {{ sequence_length - 1 }}, 1)
        and context.event_ts <= restart.event_ts
        and context.event_ts >= {{ dbt.dateadd(
            'second', '-1 - cast(ceil(' ~ farthest_gap ~ ') as bigint)', 'restart.event_ts') }}

),

{#- Where each changed person's replay starts: the first context event; for a person whose
    restart is their first event, the restart; null for a person replayed whole although an
    earlier event exists (no stored row before the restart: back after a consent withdrawal),
    read from the first event. #}
replay_from as (

    select
        restarts.user_id,
        resume_points.context_ts,
        resume_points.context_event_id,
        case
            when restarts.restart_gap is null then restarts.restart_ts
            else resume_points.context_ts
        end as replay_from_ts
    from restarts
    left join resume_points
        on restarts.user_id = resume_points.user_id

),

events as (

    select
        {%- for column in event_columns %}
        events.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ sessionized }} as events
    inner join replay_from
        on events.user_id = replay_from.user_id
        and events.event_ts >= coalesce(
            replay_from.replay_from_ts, cast('0001-01-01' as {{ dbt.type_timestamp() }}))
    where replay_from.context_ts is null
        or (events.event_ts, events.event_id)
            >= (replay_from.context_ts, replay_from.context_event_id)

),

{%- endif %}

{#- Windows spelled out in each OVER (Snowflake has no named WINDOW clause). One window over
    the person's timeline: the lags, the event number, the person's running count of each type
    and the next event in the session (the person's next event when it has the same
    session_index). The session so far is a window over the session's events in the same
    order: its running count of each type and the gap before its first event (its event number
    and start are stored; on DuckDB a frame of the person's window reaching back to the
    session's first event, one sort for both: macro feature_session_so_far). It replaces a
    grouping by session joined back to every event (the full build alone at 10M events: 49.9 /
    46.7 s with the join, 41.7 / 43.7 s without).
    A replay's context events form the sessions before the restart's (cut short: their rows
    are dropped in `final`); the restart is a session start, so the replayed sessions are
    whole. -#}
{%- set user_timeline = 'partition by user_id order by event_ts, event_id' %}
{%- set user_so_far = 'partition by user_id order by event_ts, event_id rows between unbounded preceding and current row' %}
{%- set session_so_far = feature_session_so_far('event_index_in_session') %}
windowed as (

    select
        user_id,
        event_id,
        event_ts,
        event_name,
        {%- for i in range(1, sequence_length) %}
        lag(event_name, {{ i }}) over ({{ user_timeline }}) as previous_event_name_{{ i }},
        {{ uba_epoch_seconds('event_ts') }}
            - {{ uba_epoch_seconds('lag(event_ts, ' ~ i ~ ') over (' ~ user_timeline ~ ')') }}
            as seconds_since_previous_event_{{ i }},
        {%- endfor %}
        event_index_in_session as session_event_number,
        {{ uba_epoch_seconds('event_ts') }} - {{ uba_epoch_seconds('session_started_at') }}
            as seconds_since_session_start,
        first_value(seconds_since_previous) over ({{ session_so_far }})
            as seconds_since_previous_session,
        session_index,
        row_number() over ({{ user_timeline }}) as event_number,
        {{- feature_running_counts('event_name', event_types, session_so_far, 'session_count') }}
        {{- feature_running_counts('event_name', event_types, user_so_far, 'user_count') }}
        case when lead(session_index) over ({{ user_timeline }}) = session_index
            then lead(event_name) over ({{ user_timeline }}) end as next_event_in_session
    from {{ events }}
    {%- if parts > 1 %}
    where {{ uba_person_part_filter('user_id', part, parts) }}
    {%- endif %}

),

{#- A session is known to have ended at an event once the data reaches uba__session_timeout_minutes
    past it (or the max-length rule cut it: then the next event is already there). Read as a
    scalar subquery, not a cross join: PostgreSQL computes it once (an InitPlan), where a cross
    join with a misestimated one-row side re-ran the max for every row (minutes at 60k events).
    The epoch of the latest time, not the latest epoch: DuckDB takes a column's max without
    computing every row's epoch (10M events: 0.02 s against 0.12, here and in the post-hook). -#}
data_end as (

    select {{ uba_epoch_seconds('max(event_ts)') }} as max_epoch_seconds
    from {{ sessionized }}

),

{#- Counters carried from before the replayed events (zero on a full build). -#}
carried as (

    select
        windowed.*,
        {{- feature_running_counts_unpacked(event_types, 'session_count', 'windowed') }}
        {{- feature_running_counts_unpacked(event_types, 'user_count', 'windowed') }}
        {%- if is_incremental() %}
        coalesce(resume_points.restart_event_number, 1) as restart_event_number,
        coalesce(resume_points.events_before_context, 0) as events_before
        {%- for event_type in event_types %},
        coalesce(resume_points.before_{{ event_type }}, 0) as before_{{ event_type }}
        {%- endfor %}
        {%- else %}
        1 as restart_event_number,
        0 as events_before
        {%- for event_type in event_types %},
        0 as before_{{ event_type }}
        {%- endfor %}
        {%- endif %}
    from windowed
    {%- if is_incremental() %}
    left join resume_points
        on windowed.user_id = resume_points.user_id
    {%- endif %}

),

final as (

    select
        windowed.user_id,
        windowed.event_id,
        windowed.event_ts,
        cast(windowed.event_ts as date) as event_date,
        windowed.event_name,
        {%- for i in range(1, sequence_length) %}
        coalesce(windowed.previous_event_name_{{ i }}, 'none') as previous_event_name_{{ i }},
        cast(coalesce(windowed.seconds_since_previous_event_{{ i }}, -1) as {{ uba_type_double() }})
            as seconds_since_previous_event_{{ i }},
        {%- endfor %}
        cast(windowed.session_event_number as bigint) as session_event_number,
        cast(windowed.seconds_since_session_start as {{ uba_type_double() }})
            as seconds_since_session_start,
        cast(coalesce(windowed.seconds_since_previous_session, -1) as {{ uba_type_double() }})
            as seconds_since_previous_session,
        cast(windowed.session_index - 1 as bigint) as count_previous_sessions,
        cast(windowed.event_number + windowed.events_before as bigint) as count_events_so_far,
        {%- for event_type in event_types %}
        cast(windowed.session_count_{{ event_type }} as bigint) as session_count_{{ event_type }},
        {%- endfor %}
        {%- for event_type in event_types %}
        {{ feature_safe_divide(
            '(windowed.user_count_' ~ event_type ~ ' + windowed.before_' ~ event_type ~ ')',
            '(windowed.event_number + windowed.events_before)') }}
            as share_{{ event_type }}_so_far,
        {%- endfor %}
        cast(extract(hour from windowed.event_ts) as bigint) as hour_of_day,
        cast({{ uba_iso_weekday("windowed.event_ts") }} as bigint) as day_of_week,
        case
            when windowed.next_event_in_session is not null then windowed.next_event_in_session
            when {{ uba_epoch_seconds('windowed.event_ts') }} + {{ timeout_seconds }}
                < (select max_epoch_seconds from data_end) then 'session_end'
        end as next_event_name
    from carried as windowed
    {#- the context events before the restart keep their stored rows #}
    where windowed.event_number + windowed.events_before >= windowed.restart_event_number

)

select * from final
{#- A full build stores the rows in time order (each part's, when written in parts): the daily
    run's time conditions then skip the row groups before them (incremental runs append
    after). #}
{% if not is_incremental() %}order by event_ts, event_id{% endif %}
{%- endset -%}
{%- do statements.append(statement) -%}
{%- endfor %}

{{ uba_written_in_person_parts(statements) }}
