{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    on_schema_change='fail',
) }}
{#- Feature family "diversity": distinct event names and product features a user touched in the
    recent window (uba__feature_recent_days) before each snapshot, from the visible
    (user, day, event name, feature) items. Users without visible events in that window have no
    row (the mart reads 0). -#}
{%- set recent_days = var('uba__feature_recent_days') | int -%}

with snapshot_dates as (

    {{ feature_snapshot_dates() }}

),

user_day_items as (

    select * from {{ ref('int_feature_user_day_items') }}

),

final as (

    select
        user_day_items.user_id,
        snapshot_dates.as_of_date,
        cast(count(distinct user_day_items.event_name) as bigint)
            as count_distinct_event_names_{{ recent_days }}d,
        cast(count(distinct user_day_items.feature) as bigint)
            as count_distinct_features_{{ recent_days }}d
    from user_day_items
    inner join snapshot_dates
        on user_day_items.available_date < snapshot_dates.as_of_date
        and user_day_items.event_date
            >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}
    group by 1, 2

)

select * from final
