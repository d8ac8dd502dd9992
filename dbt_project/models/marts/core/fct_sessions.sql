{#- One row per session, from int_events_sessionized. Incremental: a run deletes the sessions
    of every person whose events changed, from that person's earliest change on (the pre-hook;
    includes people who lost events to re-stitching), and appends their re-cut sessions, all
    of them among the rows written since this model last ran (macros in uba_batches.sql).
    The delete also carries the earliest change of all as a literal (redundant: the same rows),
    so only the sessions from then on are matched against the people, and a full build stores
    the sessions in start order, so DuckDB skips the row groups before it. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{
    config(
        materialized=uba_incremental_unless_spark(),
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where "
            ~ "{{ uba_reads_everything(ref('int_events_sessionized')) }} or exists (select 1 "
            ~ "from ({{ uba_changed_people(ref('int_events_sessionized')) }}) as changed "
            ~ "where changed.user_id = {{ this }}.user_id "
            ~ "and {{ this }}.session_started_at >= changed.changed_from_ts) "
            ~ "{{ uba_and_at_or_after(this ~ '.session_started_at', 'select changed_from_ts from ('"
            ~ " ~ uba_changed_people(ref('int_events_sessionized')) ~ ') as changed') }}{% endif %}",
        ],
        post_hook=["{{ uba_record_consumed_batch(ref('int_events_sessionized')) }}"],
    )
}}

with

sessionized as (

    {{ uba_changed_rows(sessionized) }}

),

session_totals as (

    select
        session_id,
        user_id,
        session_index,
        min(event_ts) as session_started_at,
        max(event_ts) as session_ended_at,
        count(*) as count_events,
        count(case when event_name = 'page_view' then 1 end) as count_page_views,
        count(case when {{ uba_is_purchase('event_name') }} then 1 end) as count_purchases,
        -- summed as decimal: a float sum depends on thread order, and re-runs must match bit for bit
        {{ uba_exact_sum('revenue_usd') }} as revenue_usd,
        {{ uba_first_by('device', ['event_index_in_session']) }} as device,
        {{ uba_first_by('country', ['event_index_in_session']) }} as country,
        {{ uba_first_by('event_name', ['event_index_in_session']) }} as entry_event_name,
        {{ uba_last_by('event_name', ['event_index_in_session']) }} as exit_event_name,
        max(received_at) as last_received_at
    from sessionized
    group by 1, 2, 3

),

final as (

    select
        session_id,
        user_id,
        session_index,
        session_started_at,
        session_ended_at,
        {{ uba_epoch_seconds('session_ended_at') }} - {{ uba_epoch_seconds('session_started_at') }}
            as session_duration_seconds,
        count_events,
        count_page_views,
        count_purchases,
        revenue_usd,
        device,
        country,
        entry_event_name,
        exit_event_name,
        last_received_at
    from session_totals

)

select * from final
{% if not is_incremental() %}order by session_started_at, session_id{% endif %}
