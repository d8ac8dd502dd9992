{#- The next-action model's input: one row per event of a person, describing the sequence up to
    and including that event (the last uba__sequence_length events and their gaps, the session
    so far, the person's event mix so far, the time of day) and the label: the next event in
    the same session, 'session_end' when the session ended there, null while it may still be
    open. Point in time by construction: every feature is a window over the person's events
    ordered by (event_ts, event_id) that ends at the current row, so a row never sees a later
    event; only the label looks ahead. Sessions are re-cut from fct_events with the rule of
    int_events_sessionized (macro uba_sessionize), so they are the sessions of fct_sessions and
    fct_event_transitions, and the SQL needs nothing but (user_id, event_id, event_name,
    event_ts): the scoring service runs this very compiled SQL on posted events
    (python_models/service/features.py). -#}
{%- set sequence_length = var('uba__sequence_length') | int -%}
{%- set event_types = uba_feature_event_types() -%}
{%- set timeout_seconds = var('uba__session_timeout_minutes') * 60 -%}
{%- if sequence_length < 2 -%}
    {{ exceptions.raise_compiler_error("uba__sequence_length must be at least 2") }}
{%- endif -%}

with

events as (

    select user_id, event_id, event_name, event_ts from {{ ref('fct_events') }}

),

sessions as (

    {{ uba_sessionize('events', partition_by=['user_id']) }}

),

sequenced as (

    select
        events.user_id,
        events.event_id,
        events.event_name,
        events.event_ts,
        sessions.event_number,
        sessions.session_index,
        sessions.session_started_at,
        sessions.session_first_event_number,
        sessions.seconds_since_previous
    from events
    inner join sessions
        on events.event_id = sessions.event_id

),

windowed as (

    select
        user_id,
        event_id,
        event_ts,
        event_name,
        {%- for i in range(1, sequence_length) %}
        lag(event_name, {{ i }}) over user_timeline as previous_event_name_{{ i }},
        {{ uba_epoch_seconds('event_ts') }}
            - {{ uba_epoch_seconds('lag(event_ts, ' ~ i ~ ') over user_timeline') }}
            as seconds_since_previous_event_{{ i }},
        {%- endfor %}
        event_number - session_first_event_number + 1 as session_event_number,
        {{ uba_epoch_seconds('event_ts') }} - {{ uba_epoch_seconds('session_started_at') }}
            as seconds_since_session_start,
        max(
            case when event_number = session_first_event_number then seconds_since_previous end
        ) over session_so_far as seconds_since_previous_session,
        session_index,
        event_number,
        {%- for event_type in event_types %}
        sum(case when event_name = '{{ event_type }}' then 1 else 0 end) over session_so_far
            as session_count_{{ event_type }},
        sum(case when event_name = '{{ event_type }}' then 1 else 0 end) over user_so_far
            as user_count_{{ event_type }},
        {%- endfor %}
        lead(event_name) over session_timeline as next_event_in_session
    from sequenced
    window
        user_timeline as (partition by user_id order by event_ts, event_id),
        user_so_far as (
            partition by user_id
            order by event_ts, event_id
            rows between unbounded preceding and current row
        ),
        session_timeline as (partition by user_id, session_index order by event_ts, event_id),
        session_so_far as (
            partition by user_id, session_index
            order by event_ts, event_id
            rows between unbounded preceding and current row
        )

),

{#- A session is known to have ended at an event once the data reaches uba__session_timeout_minutes
    past it (or the max-length rule cut it: then the next event is already there). -#}
data_end as (

    select max({{ uba_epoch_seconds('event_ts') }}) as max_epoch_seconds from events

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
        cast(windowed.event_number as bigint) as count_events_so_far,
        {%- for event_type in event_types %}
        cast(windowed.session_count_{{ event_type }} as bigint) as session_count_{{ event_type }},
        {%- endfor %}
        {%- for event_type in event_types %}
        {{ feature_safe_divide('windowed.user_count_' ~ event_type, 'windowed.event_number') }}
            as share_{{ event_type }}_so_far,
        {%- endfor %}
        cast(extract(hour from windowed.event_ts) as bigint) as hour_of_day,
        cast(extract(isodow from windowed.event_ts) as bigint) as day_of_week,
        case
            when windowed.next_event_in_session is not null then windowed.next_event_in_session
            when {{ uba_epoch_seconds('windowed.event_ts') }} + {{ timeout_seconds }}
                < data_end.max_epoch_seconds then 'session_end'
        end as next_event_name
    from windowed
    cross join data_end

)

select * from final
