{#- DAU / WAU / MAU on rolling windows ending each day (7 and 28 days) and stickiness.
    Without a range join: a user active on day a counts for the days [a, a + n) of an n-day
    window, cut at the user's next active day (from there that day counts), so each user's
    spans are disjoint and a day's active users are a running sum of span starts minus ends:
    one pass over the user-days, whatever the window.

    Incremental (a consumer of int_events_sessionized, macros/uba_batches.sql): the days from
    the earliest day with events written since it last ran are deleted (the pre-hook) and
    recounted from the user-days of the longest window before it on: an earlier user-day's
    span ends before that day, so the running sums from there on are the whole history's. -#}
-- depends_on: {{ ref('int_events_sessionized') }}
{%- set windows = {'daily': 1, 'weekly': 7, 'monthly': 28} -%}
{{ config(**uba_events_consumer_config('rows',
    where="activity_date >= {{ active_users_recounted_from() }}")) }}
with activity as (

    select
        user_id,
        activity_date,
        lead(activity_date) over (partition by user_id order by activity_date)
            as next_active_date
    from {{ ref('fct_user_activity_daily') }}
    {%- if is_incremental() %}
    where activity_date >= {{ active_users_recounted_from(days_before=windows.values() | max) }}
    {%- endif %}

),

days as (

    {#- incrementally from the first day read (every span edge is on or after it) or the
        first recounted day, whichever is earlier, but not before the first activity date -#}
    {{ mart_date_spine(
        '(select min(activity_date) from activity)' if not is_incremental()
        else 'greatest(least(' ~ active_users_recounted_from()
            ~ ', (select min(activity_date) from activity)), '
            ~ '(select min(activity_date) from ' ~ ref('fct_user_activity_daily') ~ '))',
        '(select max(activity_date) from activity)') }}

),

{#- +1 on the day a span starts, -1 on the day after it ends, per window. -#}
span_edges as (

    {% for name, days in windows.items() -%}
    select '{{ name }}' as window_name, activity_date as edge_date, 1 as change
    from activity
    union all
    select
        '{{ name }}' as window_name,
        case
            when next_active_date < {{ dbt.dateadd('day', days, 'activity_date') }}
                then next_active_date
            else cast({{ dbt.dateadd('day', days, 'activity_date') }} as date)
        end as edge_date,
        -1 as change
    from activity
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

daily_changes as (

    select
        edge_date{% for name in windows %},
        sum(case when window_name = '{{ name }}' then change else 0 end) as {{ name }}_change
        {%- endfor %}
    from span_edges
    group by 1

),

rolling as (

    select
        days.spine_date as activity_date
        {%- for name in windows %},
        sum(coalesce(daily_changes.{{ name }}_change, 0)) over (
            order by days.spine_date rows between unbounded preceding and current row
        ) as {{ name }}_active_users
        {%- endfor %}
    from days
    left join daily_changes
        on days.spine_date = daily_changes.edge_date

)

select
    cast(activity_date as date) as activity_date,
    cast(daily_active_users as bigint) as daily_active_users,
    cast(weekly_active_users as bigint) as weekly_active_users,
    cast(monthly_active_users as bigint) as monthly_active_users,
    {{ feature_safe_divide('daily_active_users', 'monthly_active_users') }} as stickiness_dau_mau
from rolling
{%- if is_incremental() %}
where activity_date >= {{ active_users_recounted_from() }}
{%- endif %}
