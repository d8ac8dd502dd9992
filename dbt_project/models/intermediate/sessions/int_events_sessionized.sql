{#- Sessions per person (user_id from stitching): the rule lives in the macro uba_sessionize
    (timeout gap, optional end events and midnight split, max-length cap), shared with the
    feature mart's session features. The windows run over narrow rows (event_id, user_id,
    event_ts, event_name); the wide event columns are joined back once at the end. -#}
with

events as (

    select * from {{ ref('int_events_stitched') }}

),

sessions as (

    {{ uba_sessionize('events', partition_by=['user_id']) }}

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
