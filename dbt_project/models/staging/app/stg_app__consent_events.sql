{#- One row per consent event and purpose it sets (var uba__consent_purposes): the event
    named var uba__consent_event_name carries one property consent_<purpose> per purpose it
    changes, true / false (or "granted" / "denied"); a purpose it does not mention is left as
    it was. Identity comes later, by event_id (int_events_sessionized), so a choice made before
    logging in counts for the person the device is stitched to. docs/privacy.md, "Consent". -#}
{%- set purposes = var('uba__consent_purposes') -%}
with

consent_events as (

    select event_id, event_ts, received_at, properties
    from {{ source('app', 'events_validated') }}
    where event_name = '{{ var("uba__consent_event_name") }}'

),

choices as (

    {% for purpose in purposes -%}
    select
        event_id,
        '{{ purpose }}' as purpose,
        lower(trim({{ uba_json_text('properties', 'consent_' ~ purpose) }})) as choice,
        event_ts,
        received_at
    from consent_events
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        event_id,
        purpose,
        choice in ('true', 'granted') as is_granted,
        cast(event_ts as {{ dbt.type_timestamp() }}) as changed_at,
        cast(received_at as {{ dbt.type_timestamp() }}) as received_at
    from choices
    where choice in ('true', 'granted', 'false', 'denied')

)

select * from final
