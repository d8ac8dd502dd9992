{#- The session rule, written once: int_events_sessionized (the sessions of the marts) and
    int_feature_session_stats (sessions re-cut per feature snapshot) both call it.

    `events` is a relation or CTE name holding event_id, event_ts, event_name and the
    `partition_by` columns (the person; the feature mart adds the snapshot date). Per partition,
    events are ordered by (event_ts, event_id).
    1. Boundaries. A new session starts at the partition's first event and at an event
       - more than uba__session_timeout_minutes after the previous one (a gap of exactly the
         timeout stays in the session);
       - right after an event named in uba__session_end_events (say ["logout"]: the logout
         is the last event of its session). Empty list (the default) = off;
       - on another local day than the previous event, when uba__session_split_at_midnight
         (off by default) is on; days are counted in uba__session_time_zone.
    2. Max length. The stretch between two boundaries is cut into consecutive windows of
       uba__session_max_length_minutes measured from its first event: an event e seconds
       after that first event goes to window ceil(e / max_length) - 1 (window 0 for e = 0),
       so no session lasts longer than the cap and an event exactly max_length after the
       start still belongs to the first window. Each (stretch, window) is one session.
    A running "start of the current session" would need recursion; the window rule is
    set-based, deterministic and never yields a session longer than the cap.

    Returns one row per event: the partition columns, event_id, event_ts, the `carry`
    columns (passed through untouched), seconds_since_previous (null for the partition's first
    event) and the session key within the partition (stretch_number, max_length_window). With
    `numbered` (default) also event_number, is_stretch_start, stretch_started_at,
    session_index (1-based), session_started_at and session_first_event_number, at the cost
    of an aggregate over the sessions joined back to the rows; callers that only group by
    session pass numbered=false. With `session_id` (numbered only: a SQL expression over the
    partition columns and session_started_at) also session_id, computed once per session in
    that aggregate rather than once per event (an md5 per event was ~8% of
    int_events_sessionized's CPU).
    The first event of each partition always starts a stretch: int_events_sessionized relies
    on that when it re-cuts a person from a stretch start onwards (incremental runs).
    Speed: the windows share one partition/order over narrow rows; callers join wide columns
    back afterwards. -#}
{% macro uba_sessionize(
    events, partition_by=['user_id'], numbered=true, carry=[], session_id=none
) -%}
    {%- set timeout_seconds = var('uba__session_timeout_minutes') * 60 -%}
    {%- set max_length_seconds = var('uba__session_max_length_minutes') * 60 -%}
    {%- set end_events = var('uba__session_end_events') -%}
    {%- set split_at_midnight = var('uba__session_split_at_midnight') -%}
    {%- set time_zone = var('uba__session_time_zone') -%}
    {%- set partition = partition_by | join(', ') -%}
    {%- set carried = carry -%}
    {%- if end_events is string -%}
        {{ exceptions.raise_compiler_error(
            "uba__session_end_events must be a list of event names, e.g. ['logout']") }}
    {%- endif -%}
    {#- Window specs written inline (Snowflake has no named WINDOW clause). -#}
    {%- set session_timeline = '(partition by ' ~ partition ~ ' order by event_ts, event_id)' -%}
    {%- set running_timeline = '(partition by ' ~ partition ~ ' order by event_ts, event_id'
        ~ ' rows between unbounded preceding and current row)' -%}
    with

    session_events as (

        select
            {{ partition }},
            event_id,
            event_ts,
            {%- for column in carried %}
            {{ column }},
            {%- endfor %}
            lag(event_ts) over {{ session_timeline }} as previous_event_ts
            {%- if numbered %},
            row_number() over {{ session_timeline }} as event_number
            {%- endif %}
            {%- if end_events %},
            lag(event_name) over {{ session_timeline }} in (
                {%- for name in end_events %}'{{ name }}'{{ ", " if not loop.last }}{% endfor -%}
            ) as follows_end_event
            {%- endif %}
            {%- if split_at_midnight %},
            {{ uba_local_date('event_ts', time_zone) }}
                != lag({{ uba_local_date('event_ts', time_zone) }}) over {{ session_timeline }}
                as is_new_local_day
            {%- endif %}
        from {{ events }}

    ),

    boundaries as (

        select
            session_events.*,
            {{ uba_epoch_seconds('event_ts') }} - {{ uba_epoch_seconds('previous_event_ts') }}
                as seconds_since_previous,
            case
                when previous_event_ts is null then 1
                when {{ uba_epoch_seconds('event_ts') }} - {{ uba_epoch_seconds('previous_event_ts') }}
                    > {{ timeout_seconds }} then 1
                {%- if end_events %}
                when follows_end_event then 1
                {%- endif %}
                {%- if split_at_midnight %}
                when is_new_local_day then 1
                {%- endif %}
                else 0
            end as is_stretch_start
        from session_events

    ),

    stretches as (

        select
            boundaries.*,
            sum(is_stretch_start) over {{ running_timeline }} as stretch_number,
            max(case when is_stretch_start = 1 then event_ts end) over {{ running_timeline }}
                as stretch_started_at
        from boundaries

    ),

    {#- The previous event of a non-starting event lies in the same stretch, so its window
        comes from its own timestamp: no second lag() pass over the rows. #}
    windowed as (

        select
            stretches.*,
            {{ _uba_max_length_window('event_ts', max_length_seconds) }} as max_length_window,
            case
                when is_stretch_start = 1 then 1
                when {{ _uba_max_length_window('event_ts', max_length_seconds) }}
                    != {{ _uba_max_length_window('previous_event_ts', max_length_seconds) }}
                    then 1
                else 0
            end as is_session_start
        from stretches

    )

    {% if numbered -%}
    {#- A session is one (stretch, window) pair and its events are contiguous: its first
        event's time and number are the pair's minimums, its index the pair's rank. One
        aggregate over the pairs joined back is cheaper than three running windows. -#}
    select
        {%- for column in partition_by %}
        windowed.{{ column }},
        {%- endfor %}
        windowed.event_id,
        windowed.event_ts,
        {%- for column in carried %}
        windowed.{{ column }},
        {%- endfor %}
        windowed.seconds_since_previous,
        windowed.event_number,
        windowed.stretch_number,
        windowed.is_stretch_start = 1 as is_stretch_start,
        windowed.stretch_started_at,
        windowed.max_length_window,
        session_keys.session_index,
        session_keys.session_started_at,
        session_keys.session_first_event_number
        {%- if session_id %},
        session_keys.session_id
        {%- endif %}
    from windowed
    inner join (
        select
            session_groups.*
            {%- if session_id %},
            {{ session_id }} as session_id
            {%- endif %}
        from (
            select
                {{ partition }},
                stretch_number,
                max_length_window,
                min(event_ts) as session_started_at,
                min(event_number) as session_first_event_number,
                row_number() over (
                    partition by {{ partition }} order by stretch_number, max_length_window
                ) as session_index
            from windowed
            group by {{ partition }}, stretch_number, max_length_window
        ) as session_groups
    ) as session_keys
        on {% for column in partition_by %}windowed.{{ column }} = session_keys.{{ column }} and {% endfor %}windowed.stretch_number = session_keys.stretch_number
        and windowed.max_length_window = session_keys.max_length_window
    {%- else -%}
    select * from windowed
    {%- endif %}
{%- endmacro %}

{#- Window of the max-length rule for the event at `ts` in the stretch starting at
    stretch_started_at: ceil(elapsed / max_length) - 1, and 0 for the first event. -#}
{% macro _uba_max_length_window(ts, max_length_seconds) -%}
    case
        when {{ ts }} <= stretch_started_at then 0
        else cast(ceil(
            ({{ uba_epoch_seconds(ts) }} - {{ uba_epoch_seconds('stretch_started_at') }})
            / {{ max_length_seconds }}
        ) as integer) - 1
    end
{%- endmacro %}

{#- Per person in `people` (user_id, changed_from_ts): the stored row of `relation` before their
    earliest change where an incremental re-cut restarts, `columns` of it (user_id first) and
    `restarts_after`:
    - true when the person's latest stored event before the change lies more than
      uba__session_timeout_minutes before it: whatever event comes first from the change on
      then starts a stretch (the timeout rule ends a session whatever the other rules say, and
      the max-length windows count from a stretch start), so nothing before the change can
      join it. The row is that latest event: context for the re-cut (its time for the first
      gap, its session_index to continue from), not re-cut itself. A returning person's re-cut
      thus starts at their new event, not at their last session weeks back;
    - false otherwise: the row is the latest stretch start before the change, and the re-cut
      starts at it (the sessions from there on may take the change in).
    People without a stored event before the change are left out (their re-cut starts at the
    change: a person's first event starts a stretch). -#}
{% macro uba_recut_restart_before_change(relation, people, columns) -%}
    {{ return(adapter.dispatch('uba_recut_restart_before_change', 'uba')(
        relation, people, columns)) }}
{%- endmacro %}

{#- Both versions: the latest stretch start before the change is found among the stretch starts
    alone (a filter DuckDB applies in the scan); the latest event, which lies in that stretch,
    among the rows from it on (a join's time condition DuckDB applies to the scan at its
    smallest value), never among all of a person's rows. `latest_stretch_starts`: per person
    the latest stretch start's `columns` and changed_from_ts; `latest_rows`: per person the
    latest row's event_ts and what `latest_column(column)` reads. -#}
{% macro _uba_recut_restart_select(latest_stretch_starts, latest_rows, columns, latest_column) -%}
    {%- set restarts_after -%}
        {{ uba_epoch_seconds('stretch_starts.changed_from_ts') }}
            - {{ uba_epoch_seconds('latest.event_ts') }}
            > {{ var('uba__session_timeout_minutes') * 60 }}
    {%- endset -%}
    with

    stretch_starts as (

        {{ latest_stretch_starts }}

    ),

    latest as (

        {{ latest_rows }}

    )

    select
        stretch_starts.user_id,
        {%- for column in columns | reject('equalto', 'user_id') %}
        case when {{ restarts_after }} then {{ latest_column(column) }}
            else stretch_starts.{{ column }} end as {{ column }},
        {%- endfor %}
        {{ restarts_after }} as restarts_after
    from stretch_starts
    inner join latest
        on stretch_starts.user_id = latest.user_id
{%- endmacro %}

{#- The rows of `relation` from each person's latest stretch start up to their change. -#}
{% macro _uba_rows_of_last_stretch(relation) -%}
        from {{ relation }} as rows_before
        inner join stretch_starts
            on rows_before.user_id = stretch_starts.user_id
            and rows_before.event_ts >= stretch_starts.event_ts
            and rows_before.event_ts < stretch_starts.changed_from_ts
{%- endmacro %}

{#- The stretch starts of `people` before their earliest change (both versions). -#}
{% macro _uba_stretch_starts_before_change(relation, people) -%}
        from {{ relation }} as before_change
        inner join {{ people }}
            on before_change.user_id = {{ people }}.user_id
        where before_change.is_stretch_start
            and before_change.event_ts < {{ people }}.changed_from_ts
{%- endmacro %}

{#- default__: the latest rows by windows. -#}
{% macro default__uba_recut_restart_before_change(relation, people, columns) -%}
    {%- set latest_stretch_starts -%}
        select *
        from (
            select
                before_change.*,
                {{ people }}.changed_from_ts,
                row_number() over (
                    partition by before_change.user_id
                    order by before_change.event_ts desc, before_change.event_id desc
                ) as recency
            {{ _uba_stretch_starts_before_change(relation, people) }}
        ) as ranked
        where recency = 1
    {%- endset -%}
    {%- set latest_rows -%}
        select *
        from (
            select
                rows_before.*,
                row_number() over (
                    partition by rows_before.user_id
                    order by rows_before.event_ts desc, rows_before.event_id desc
                ) as recency
            {{ _uba_rows_of_last_stretch(relation) }}
        ) as ranked
        where recency = 1
    {%- endset -%}
    {{ _uba_recut_restart_select(latest_stretch_starts, latest_rows, columns, _uba_column_of_latest) }}
{%- endmacro %}

{% macro _uba_column_of_latest(column) -%}
    latest.{{ column }}
{%- endmacro %}

{#- DuckDB: one aggregate per person instead of windows that sort the rows (10M: 0.6M stretch
    starts, ~1.2 s of the re-cut's CPU). arg_max keeps a row whose columns are null (its value
    is a struct, never null). -#}
{% macro duckdb__uba_recut_restart_before_change(relation, people, columns) -%}
    {%- set carried = columns | reject('equalto', 'user_id') | list -%}
    {%- set latest_stretch_starts -%}
        select
            user_id,
            changed_from_ts
            {%- for column in carried %},
            struct_extract(latest_start, '{{ column }}') as {{ column }}
            {%- endfor %}
        from (
            select
                before_change.user_id,
                max({{ people }}.changed_from_ts) as changed_from_ts,
                {{ duckdb__uba_arg_max_row('before_change', carried) }} as latest_start
            {{ _uba_stretch_starts_before_change(relation, people) }}
            group by before_change.user_id
        ) as latest_starts
    {%- endset -%}
    {%- set latest_rows -%}
        select
            rows_before.user_id,
            max(rows_before.event_ts) as event_ts,
            {{ duckdb__uba_arg_max_row('rows_before', carried) }} as latest_row
        {{ _uba_rows_of_last_stretch(relation) }}
        group by rows_before.user_id
    {%- endset -%}
    {{ _uba_recut_restart_select(
        latest_stretch_starts, latest_rows, columns, duckdb__uba_column_of_latest) }}
{%- endmacro %}

{% macro duckdb__uba_arg_max_row(alias, carried) -%}
    arg_max(
        struct_pack(
            {%- for column in carried %}
            {{ column }} := {{ alias }}.{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        ),
        ({{ alias }}.event_ts, {{ alias }}.event_id)
    )
{%- endmacro %}

{% macro duckdb__uba_column_of_latest(column) -%}
    {%- if column == 'event_ts' -%}
    latest.event_ts
    {%- else -%}
    struct_extract(latest.latest_row, '{{ column }}')
    {%- endif -%}
{%- endmacro %}
