{#- Sessions per person (user_id from stitching), events ordered by (event_ts, event_id).
    1. Timeout: a new session starts when the gap to the previous event is more than
       uba__session_timeout_minutes (a gap of exactly the timeout stays in the session).
    2. Max length: a timeout-session is cut into consecutive windows of
       uba__session_max_length_minutes measured from its first event: an event e seconds after
       that first event goes to window ceil(e / max_length) - 1 (window 0 for e = 0), so every
       session lasts at most max_length and an event exactly max_length after the start still
       belongs to the first window. Each (timeout-session, window) is one session.
    A running "start of the current session" would need recursion; the window rule is
    set-based, deterministic and never yields a session longer than the cap.
    Speed: the windows run over narrow rows (event_id, user_id, event_ts) that all share one
    partition/order, and the wide event columns are joined back once at the end. -#}
{%- set timeout_seconds = var('uba__session_timeout_minutes') * 60 -%}
{%- set max_length_seconds = var('uba__session_max_length_minutes') * 60 -%}
with

events as (

    select * from {{ ref('int_events_stitched') }}

),

ordered as (

    select
        event_id,
        user_id,
        event_ts,
        {{ uba_epoch_seconds('event_ts') }}
            - {{ uba_epoch_seconds('lag(event_ts) over person_timeline') }}
            as seconds_since_previous,
        row_number() over person_timeline as event_number
    from events
    window person_timeline as (partition by user_id order by event_ts, event_id)

),

timeout_starts as (

    select
        ordered.*,
        case
            when seconds_since_previous is null then 1
            when seconds_since_previous > {{ timeout_seconds }} then 1
            else 0
        end as is_timeout_session_start
    from ordered

),

timeout_sessions as (

    select
        timeout_starts.*,
        max(case when is_timeout_session_start = 1 then event_ts end) over (
            partition by user_id
            order by event_ts, event_id
            rows between unbounded preceding and current row
        ) as timeout_session_started_at
    from timeout_starts

),

windowed as (

    select
        timeout_sessions.*,
        case
            when event_ts <= timeout_session_started_at then 0
            else cast(ceil(
                ({{ uba_epoch_seconds('event_ts') }}
                    - {{ uba_epoch_seconds('timeout_session_started_at') }})
                / {{ max_length_seconds }}
            ) as integer) - 1
        end as max_length_window
    from timeout_sessions

),

session_starts as (

    select
        windowed.*,
        case
            when is_timeout_session_start = 1 then 1
            when max_length_window != lag(max_length_window) over (
                partition by user_id order by event_ts, event_id
            ) then 1
            else 0
        end as is_session_start
    from windowed

),

sessions as (

    select
        event_id,
        seconds_since_previous,
        event_number,
        count(case when is_session_start = 1 then 1 end) over person_running as session_index,
        max(case when is_session_start = 1 then event_ts end) over person_running
            as session_started_at,
        max(case when is_session_start = 1 then event_number end) over person_running
            as session_first_event_number
    from session_starts
    window person_running as (
        partition by user_id
        order by event_ts, event_id
        rows between unbounded preceding and current row
    )

),

final as (

    select
        events.event_id,
        events.user_id,
        md5(
            events.user_id || '|' || {{ uba_timestamp_text('sessions.session_started_at') }}
        ) as session_id,
        cast(sessions.session_index as bigint) as session_index,
        cast(
            sessions.event_number - sessions.session_first_event_number + 1 as bigint
        ) as event_index_in_session,
        events.user_hash,
        events.anonymous_hash,
        events.is_identified,
        events.is_identified_event,
        events.event_name,
        events.event_ts,
        events.received_at,
        sessions.session_started_at,
        sessions.seconds_since_previous,
        events.session_hint,
        events.revenue_usd,
        events.currency,
        events.page,
        events.device,
        events.country,
        events.plan,
        events.feature
    from events
    inner join sessions
        on events.event_id = sessions.event_id

)

select * from final
