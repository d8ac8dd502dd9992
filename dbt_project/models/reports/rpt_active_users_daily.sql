{#- DAU / WAU / MAU on rolling windows ending each day (7 and 28 days) and stickiness. -#}
with activity as (

    select user_id, activity_date from {{ ref('fct_user_activity_daily') }}

),

days as (

    {{ mart_date_spine('(select min(activity_date) from activity)',
                       '(select max(activity_date) from activity)') }}

),

rolling as (

    select
        days.spine_date as activity_date,
        count(distinct case when activity.activity_date = days.spine_date
            then activity.user_id end) as daily_active_users,
        count(distinct case
            when activity.activity_date > {{ dbt.dateadd('day', -7, 'days.spine_date') }}
                then activity.user_id end) as weekly_active_users,
        count(distinct activity.user_id) as monthly_active_users
    from days
    left join activity
        on activity.activity_date <= days.spine_date
        and activity.activity_date > {{ dbt.dateadd('day', -28, 'days.spine_date') }}
    group by 1

)

select
    cast(activity_date as date) as activity_date,
    cast(daily_active_users as bigint) as daily_active_users,
    cast(weekly_active_users as bigint) as weekly_active_users,
    cast(monthly_active_users as bigint) as monthly_active_users,
    {{ feature_safe_divide('daily_active_users', 'monthly_active_users') }} as stickiness_dau_mau
from rolling
