{#- One row per person. Modes break ties deterministically: most events first, then the
    alphabetically smallest value. Incremental: the people whose events changed since this
    model last ran (macros in uba_batches.sql) are deleted (the pre-hook; a person who lost
    every event to re-stitching stays deleted) and recomputed from all their events. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config('people')) }}

with

events as (

    select
        user_id,
        is_identified,
        event_ts,
        session_id,
        anonymous_hash,
        device,
        country,
        revenue_usd
    from {{ sessionized }}
    {% if is_incremental() -%}
    where user_id in (
        select user_id from ({{ uba_changed_people(sessionized) }}) as changed
    )
    {%- endif %}

),

device_counts as (

    select
        user_id,
        device,
        count(*) as count_events,
        row_number() over (
            partition by user_id
            order by count(*) desc, device
        ) as device_rank
    from events
    where device is not null
    group by 1, 2

),

country_counts as (

    select
        user_id,
        country,
        count(*) as count_events,
        row_number() over (
            partition by user_id
            order by count(*) desc, country
        ) as country_rank
    from events
    where country is not null
    group by 1, 2

),

user_totals as (

    select
        user_id,
        {{ dbt.bool_or('is_identified') }} as is_identified,
        min(event_ts) as first_seen_at,
        max(event_ts) as last_seen_at,
        count(*) as count_events,
        count(distinct session_id) as count_sessions,
        count(distinct anonymous_hash) as count_anonymous_ids,
        -- summed as decimal: a float sum depends on thread order, and re-runs must match bit for bit
        {{ uba_exact_sum('revenue_usd') }} as total_revenue_usd
    from events
    group by 1

),

final as (

    select
        user_totals.user_id,
        user_totals.is_identified,
        user_totals.first_seen_at,
        user_totals.last_seen_at,
        cast(user_totals.first_seen_at as date) as acquisition_date,
        cast({{ dbt.date_trunc('week', 'user_totals.first_seen_at') }} as date) as acquisition_week,
        cast({{ dbt.date_trunc('month', 'user_totals.first_seen_at') }} as date)
            as acquisition_month,
        device_counts.device as device_mode,
        country_counts.country as country_mode,
        user_totals.count_events,
        user_totals.count_sessions,
        user_totals.count_anonymous_ids,
        user_totals.total_revenue_usd
    from user_totals
    left join device_counts
        on user_totals.user_id = device_counts.user_id
        and device_counts.device_rank = 1
    left join country_counts
        on user_totals.user_id = country_counts.user_id
        and country_counts.country_rank = 1

)

select * from final
