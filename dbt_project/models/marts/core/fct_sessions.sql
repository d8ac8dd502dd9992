{#- Incremental: rebuilds every person touched by new data (macro uba_touched_user_ids).
    delete+insert on user_id drops all old sessions of those people before inserting their
    current ones; the post-hook removes sessions of person keys that no longer hold any event
    (an anonymous device whose events were stitched to a user after it identified). -#}
{#- Spark's Parquet tables have no delete+insert: rebuilt in full there. -#}
{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        unique_key='user_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} where not exists (select 1 from "
            ~ "{{ ref('int_events_sessionized') }} as events where events.user_id = "
            ~ "{{ this }}.user_id){% endif %}",
        ],
    )
}}

with

sessionized as (

    select * from {{ ref('int_events_sessionized') }}

    {% if is_incremental() %}
    where user_id in (
        {{ uba_touched_user_ids(
            'select max(last_received_at) as max_received_at from ' ~ this,
            ref('int_events_sessionized'),
        ) }}
    )
    {% endif %}

),

first_device as (

    select
        session_id,
        device,
        row_number() over (partition by session_id order by event_index_in_session) as device_rank
    from sessionized
    where device is not null

),

first_country as (

    select
        session_id,
        country,
        row_number() over (partition by session_id order by event_index_in_session) as country_rank
    from sessionized
    where country is not null

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
        count(case when event_name = 'purchase' then 1 end) as count_purchases,
        -- summed as decimal: a float sum depends on thread order, and re-runs must match bit for bit
        cast(sum(cast(revenue_usd as decimal(38, 6))) as {{ uba_type_double() }}) as revenue_usd,
        max(case when event_index_in_session = 1 then event_name end) as entry_event_name,
        max(event_index_in_session) as last_event_index,
        max(received_at) as last_received_at
    from sessionized
    group by 1, 2, 3

),

exit_events as (

    select
        sessionized.session_id,
        sessionized.event_name as exit_event_name
    from sessionized
    inner join session_totals
        on sessionized.session_id = session_totals.session_id
        and sessionized.event_index_in_session = session_totals.last_event_index

),

final as (

    select
        session_totals.session_id,
        session_totals.user_id,
        session_totals.session_index,
        session_totals.session_started_at,
        session_totals.session_ended_at,
        {{ uba_epoch_seconds('session_totals.session_ended_at') }}
            - {{ uba_epoch_seconds('session_totals.session_started_at') }}
            as session_duration_seconds,
        session_totals.count_events,
        session_totals.count_page_views,
        session_totals.count_purchases,
        session_totals.revenue_usd,
        first_device.device,
        first_country.country,
        session_totals.entry_event_name,
        exit_events.exit_event_name,
        session_totals.last_received_at
    from session_totals
    left join first_device
        on session_totals.session_id = first_device.session_id
        and first_device.device_rank = 1
    left join first_country
        on session_totals.session_id = first_country.session_id
        and first_country.country_rank = 1
    left join exit_events
        on session_totals.session_id = exit_events.session_id

)

select * from final
