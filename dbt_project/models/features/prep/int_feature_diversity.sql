{#- Incremental per person (macros/feature_helpers.sql, feature_per_person_config), reading
    which people changed in int_events_sessionized. -#}
-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**feature_per_person_config()) }}
{#- Feature family "diversity": distinct event names and product features a user touched in the
    recent window (uba__feature_recent_days) before each snapshot, from the visible
    (user, day, event name, feature) items. Users without visible events in that window have no
    row (the mart reads 0). The items are first kept once per (user, week, visible_from), with
    a flag for the week's last days, and joined to the few snapshots whose window holds the
    week (the weekly buckets of int_feature_windowed_activity). -#}
{%- set recent_days = var('uba__feature_recent_days') | int -%}
{%- set remainder = recent_days % 7 -%}

with

{{ feature_per_person_ctes() }},

items as (

    select
        user_id,
        event_name,
        feature,
        event_date,
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'event_date')) }} as date)
            as week_end_date,
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'available_date')) }} as date)
            as visible_from
    from {{ ref('int_feature_user_day_items') }}
    {% if is_incremental() -%}
    where event_date >= (
        select {{ dbt.dateadd('day', -(recent_days + 7), 'min(as_of_date)') }} from snapshot_dates
    )
        {{- feature_changed_people_only('user_id') }}
    {%- endif %}

),

week_items as (

    select
        user_id,
        week_end_date,
        visible_from,
        event_name,
        feature,
        max(case
            when {{ dbt.datediff('event_date', 'week_end_date', 'day') }} <= {{ remainder }}
                then 1
            else 0
        end) as in_last_days
    from items
    group by 1, 2, 3, 4, 5

),

joined as (

    select
        week_items.*,
        snapshot_dates.as_of_date,
        cast({{ dbt.datediff('week_items.week_end_date', 'snapshot_dates.as_of_date', 'day') }} / 7
            as integer) as week_offset
    from week_items
    inner join snapshot_dates
        on week_items.visible_from <= snapshot_dates.as_of_date
        and week_items.week_end_date <= snapshot_dates.as_of_date
        and week_items.week_end_date
            > {{ dbt.dateadd('day', -7 * ((recent_days + 6) // 7), 'snapshot_dates.as_of_date') }}
    {{- feature_rows_to_rebuild('week_items.user_id', 'snapshot_dates.as_of_date') }}

),

in_window as (

    select *
    from joined
    where week_offset < {{ recent_days // 7 }}
        {%- if remainder %}
        or (week_offset = {{ recent_days // 7 }} and in_last_days = 1)
        {%- endif %}

),

final as (

    select
        user_id,
        as_of_date,
        cast(count(distinct event_name) as bigint) as count_distinct_event_names_{{ recent_days }}d,
        cast(count(distinct feature) as bigint) as count_distinct_features_{{ recent_days }}d
    from in_window
    group by 1, 2

)

select * from final
