{#- Device-level summary of the stitching. user_hash is the last-seen identified user on the
    device (GA4's user_id mapping rule: the identified user of the latest identified event by
    (event_ts, event_id)); per-event assignment on shared devices is in int_events_sessionized.
    Aggregates only (no window over the events). Incremental: the devices with events written
    since this model last ran (macros in uba_batches.sql) are recomputed whole. -#}
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

    select
        anonymous_hash,
        {{ uba_last_by('user_hash', ['event_ts', 'event_id']) }} as user_hash,
        count(distinct user_hash) > 1 as is_shared_device,
        count(distinct user_hash) as count_identified_users,
        count(*) as count_events,
        min(event_ts) as first_seen_at,
        max(event_ts) as last_seen_at,
        max(case when user_hash is not null then event_ts end) as last_identified_at
    from events
    group by 1

)

select * from final
