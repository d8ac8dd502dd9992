{#- One row per consent choice (event and purpose), on the stitched person: the consent log
    (Snowplow's consent model keeps the same history). -#}
with

choices as (

    select * from {{ ref('stg_app__consent_events') }}

),

stitched as (

    select event_id, user_id from {{ ref('int_events_sessionized') }}

),

final as (

    select
        choices.event_id,
        stitched.user_id,
        choices.purpose,
        choices.is_granted,
        choices.changed_at,
        choices.received_at
    from choices
    inner join stitched
        on choices.event_id = stitched.event_id

)

select * from final
