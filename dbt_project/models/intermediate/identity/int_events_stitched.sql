{#- Per-event identity stitching. An identified event keeps its user. An anonymous-only event
    goes to the user identified on the same device (anonymous_hash) at the nearest LATER event,
    else at the nearest earlier one; a device never identified keeps its anonymous_hash as the
    person key. Two user_hashes are never merged: every event lands on exactly one of them.
    "Nearest" follows (event_ts, event_id). Running counts of identified events mark the
    stretch each event belongs to; this avoids IGNORE NULLS, which PostgreSQL lacks. -#}
with

events as (

    select * from {{ ref('stg_app__events') }}

),

device_positions as (

    select
        event_id,
        anonymous_hash,
        user_hash,
        -- identified events at or before this one: equal counts share the same last-before user
        count(user_hash) over (
            partition by anonymous_hash
            order by event_ts, event_id
            rows between unbounded preceding and current row
        ) as identified_before,
        -- identified events at or after this one: equal counts share the same next-after user
        count(user_hash) over (
            partition by anonymous_hash
            order by event_ts desc, event_id desc
            rows between unbounded preceding and current row
        ) as identified_after
    from events
    where anonymous_hash is not null

),

device_neighbours as (

    select
        event_id,
        -- each stretch holds exactly one identified event (its first row), so max() is that user
        case when identified_before > 0 then max(user_hash) over (
            partition by anonymous_hash, identified_before
        ) end as previous_user_hash,
        case when identified_after > 0 then max(user_hash) over (
            partition by anonymous_hash, identified_after
        ) end as next_user_hash
    from device_positions

),

stitched as (

    select
        events.event_id,
        coalesce(
            events.user_hash,
            device_neighbours.next_user_hash,
            device_neighbours.previous_user_hash,
            events.anonymous_hash
        ) as user_id,
        events.user_hash,
        events.anonymous_hash,
        events.user_hash is not null as is_identified_event,
        coalesce(
            events.user_hash,
            device_neighbours.next_user_hash,
            device_neighbours.previous_user_hash
        ) is not null as is_identified,
        events.event_name,
        events.event_ts,
        events.received_at,
        events.session_hint,
        events.revenue_usd,
        events.currency,
        events.page,
        events.device,
        events.country,
        events.plan,
        events.feature
    from events
    left join device_neighbours
        on events.event_id = device_neighbours.event_id

)

select * from stitched
