{#- Incremental: copies the int_events_sessionized rows written since this model last ran
    (macros in uba_batches.sql); delete+insert on event_id replaces re-stitched and re-cut
    events in place, and a run with no new data reads nothing. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{
    config(
        materialized=uba_incremental_unless_spark(),
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=["{{ uba_record_consumed_batch(ref('int_events_sessionized')) }}"],
        meta={'uba_replaced_from': 'event_ts'},
    )
}}

with

sessionized as (

    {{ uba_changed_rows(sessionized) }}

),

final as (

    select
        event_id,
        user_id,
        session_id,
        event_name,
        event_ts,
        received_at,
        cast(event_ts as date) as event_date,
        revenue_usd,
        page,
        device,
        country,
        plan,
        feature
    from sessionized

)

select * from final
