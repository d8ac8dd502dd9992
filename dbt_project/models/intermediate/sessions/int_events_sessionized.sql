{#- Sessions per person (user_id from stitching), events ordered by (event_ts, event_id).
    1. Timeout: a new session starts when the gap to the previous event is more than
       uba__session_timeout_minutes (a gap of exactly the timeout stays in the session).
    2. Max length: a timeout-session is cut into consecutive windows of
       uba__session_max_length_minutes measured from its first event: an event e seconds after
       that first event goes to window ceil(e / max_length) - 1 (window 0 for e = 0), so every
       session lasts at most max_length and an event exactly max_length after the start still
       belongs to the first window. Each (timeout-session, window) is one session.
    A running "start of the current session" would need recursion; the window rule is
    set-based, deterministic and never yields a session longer than the cap. -#}
{%- set timeout_seconds = var('uba__session_timeout_minutes') * 60 -%}
{%- set max_length_seconds = var('uba__session_max_length_minutes') * 60 -%}
with

events as (

    select * from {{ ref('int_events_stitched') }}

),

gaps as (

    select
        events.*,
        {{ uba_epoch_seconds('event_ts') }} - {{ uba_epoch_seconds(
            'lag(event_ts) over (partition by user_id order by event_ts, event_id)'
        ) }} as seconds_since_previous
    from events

),

timeout_sessions as (

    select
        gaps.*,
        sum(
            case
                when seconds_since_previous is null then 1
                when seconds_since_previous > {{ timeout_seconds }} then 1
                else 0
            end
        ) over (
            partition by user_id
            order by event_ts, event_id
            rows between unbounded preceding and current row
        ) as timeout_session_number
    from gaps

),

elapsed as (

    select
        timeout_sessions.*,
        {{ uba_epoch_seconds('event_ts') }} - {{ uba_epoch_seconds(
            'min(event_ts) over (partition by user_id, timeout_session_number)'
        ) }} as seconds_since_timeout_session_start
    from timeout_sessions

),

windowed as (

    select
        elapsed.*,
        case
            when seconds_since_timeout_session_start <= 0 then 0
            else cast(
                ceil(seconds_since_timeout_session_start / {{ max_length_seconds }}) as integer
            ) - 1
        end as max_length_window
    from elapsed

),

session_starts as (

    select
        windowed.*,
        min(event_ts) over (
            partition by user_id, timeout_session_number, max_length_window
        ) as session_started_at,
        dense_rank() over (
            partition by user_id
            order by timeout_session_number, max_length_window
        ) as session_index
    from windowed

),

final as (

    select
        event_id,
        user_id,
        md5(user_id || '|' || {{ uba_timestamp_text('session_started_at') }}) as session_id,
        cast(session_index as bigint) as session_index,
        row_number() over (
            partition by user_id, session_started_at
            order by event_ts, event_id
        ) as event_index_in_session,
        user_hash,
        anonymous_hash,
        is_identified,
        is_identified_event,
        event_name,
        event_ts,
        received_at,
        session_started_at,
        seconds_since_previous,
        session_hint,
        revenue_usd,
        currency,
        page,
        device,
        country,
        plan,
        feature
    from session_starts

)

select * from final
