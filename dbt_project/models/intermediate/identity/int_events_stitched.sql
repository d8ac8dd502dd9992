{#- Per-event identity stitching. An identified event keeps its user. An anonymous-only event
    goes to the user identified on the same device (anonymous_hash) at the nearest LATER event,
    else at the nearest earlier one; a device never identified keeps its anonymous_hash as the
    person key. Two user_hashes are never merged: every event lands on exactly one of them.
    "Nearest" follows (event_ts, event_id); the neighbours come from the dispatched macro
    uba_device_neighbour_users (IGNORE NULLS windows, or running counts on PostgreSQL). -#}
with

events as (

    select * from {{ ref('stg_app__events') }}

),

device_neighbours as (

    {{ uba_device_neighbour_users('events') }}

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
