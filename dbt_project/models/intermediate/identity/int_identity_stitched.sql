{#- Device-level summary of the stitching. user_hash is the last-seen identified user on the
    device (GA4's user_id mapping rule: the identified user of the latest identified event by
    (event_ts, event_id)); per-event assignment on shared devices is in int_events_stitched.
    Reads int_events_stitched (a table) so the staging view is computed once per build. -#}
with

events as (

    select * from {{ ref('int_events_stitched') }}
    where anonymous_hash is not null

),

identified_ranked as (

    select
        anonymous_hash,
        user_hash,
        event_ts,
        row_number() over (
            partition by anonymous_hash
            order by event_ts desc, event_id desc
        ) as recency_rank
    from events
    where user_hash is not null

),

last_seen as (

    select
        anonymous_hash,
        user_hash,
        event_ts as last_identified_at
    from identified_ranked
    where recency_rank = 1

),

devices as (

    select
        anonymous_hash,
        count(distinct user_hash) as count_identified_users,
        count(*) as count_events,
        min(event_ts) as first_seen_at,
        max(event_ts) as last_seen_at
    from events
    group by 1

),

final as (

    select
        devices.anonymous_hash,
        last_seen.user_hash,
        devices.count_identified_users > 1 as is_shared_device,
        devices.count_identified_users,
        devices.count_events,
        devices.first_seen_at,
        devices.last_seen_at,
        last_seen.last_identified_at
    from devices
    left join last_seen
        on devices.anonymous_hash = last_seen.anonymous_hash

)

select * from final
