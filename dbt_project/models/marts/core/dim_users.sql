{#- One row per person. Modes break ties deterministically: most events first, then the
    alphabetically smallest value. From the people's running totals (int_user_value_counts:
    per person their events, revenue, first and last event, sessions, and the events per
    device, country and anonymous id), not their events. Incremental: the people whose events
    changed since this model last ran (macros in uba_batches.sql) are deleted (the pre-hook; a
    person who lost every event to re-stitching stays deleted) and read again from the
    totals. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config('people')) }}

with

totals as (

    select *
    from {{ ref('int_user_value_counts') }}
    {% if is_incremental() -%}
    where user_id in (
        select user_id from ({{ uba_changed_people(sessionized) }}) as changed
    )
    {%- endif %}

),

value_ranks as (

    select
        user_id,
        attribute,
        value,
        row_number() over (
            partition by user_id, attribute
            order by count_events desc, value
        ) as value_rank
    from totals
    where attribute in ('device', 'country')

),

anonymous_ids as (

    select user_id, count(distinct anonymous_hash) as count_anonymous_ids
    from totals
    where attribute = 'anonymous_hash'
    group by 1

),

final as (

    select
        person.user_id,
        person.is_identified,
        person.first_event_at as first_seen_at,
        person.last_event_at as last_seen_at,
        cast(person.first_event_at as date) as acquisition_date,
        cast({{ dbt.date_trunc('week', 'person.first_event_at') }} as date) as acquisition_week,
        cast({{ dbt.date_trunc('month', 'person.first_event_at') }} as date)
            as acquisition_month,
        device_mode.value as device_mode,
        country_mode.value as country_mode,
        person.count_events,
        person.count_sessions,
        coalesce(anonymous_ids.count_anonymous_ids, 0) as count_anonymous_ids,
        -- the exact decimal total as a double, as uba_exact_sum gives it
        cast(person.revenue_usd as {{ uba_type_double() }}) as total_revenue_usd
    from totals as person
    left join value_ranks as device_mode
        on person.user_id = device_mode.user_id
        and device_mode.attribute = 'device'
        and device_mode.value_rank = 1
    left join value_ranks as country_mode
        on person.user_id = country_mode.user_id
        and country_mode.attribute = 'country'
        and country_mode.value_rank = 1
    left join anonymous_ids
        on person.user_id = anonymous_ids.user_id
    where person.attribute = 'events'

)

select * from final
