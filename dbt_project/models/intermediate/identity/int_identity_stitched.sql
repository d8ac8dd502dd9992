{#- Device-level summary of the stitching. user_hash is the last-seen identified user on the
    device (GA4's user_id mapping rule: the identified user of the latest identified event by
    (event_ts, event_id)); per-event assignment on shared devices is in int_events_sessionized.
    Aggregates only (no window over the events; macro uba_device_summary, which
    int_events_sessionized also reads as the devices' state before a run). Incremental: the
    devices with events written since this model last ran (macros in uba_batches.sql) are
    recomputed whole. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{
    config(
        materialized=uba_incremental_unless_spark(),
        unique_key='anonymous_hash',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=["{{ uba_record_consumed_batch(ref('int_events_sessionized')) }}"],
    )
}}

with

events as (

    select anonymous_hash, user_hash, event_ts, event_id
    from {{ sessionized }}
    where anonymous_hash is not null
    {%- if is_incremental() %}
        and anonymous_hash in (
            select anonymous_hash from ({{ uba_changed_rows(sessionized) }}) as changed
        )
    {%- endif %}

),

final as (

    {{ uba_device_summary('events') }}

)

select * from final
