{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    on_schema_change='fail',
) }}
{#- Point in time: every input row is filtered on available_date < as_of_date (i.e. event_ts and
    received_at both before the snapshot), so late events never leak into earlier snapshots.
    Events are first rolled up to user-days, then joined to the snapshot grid with a range
    condition limited to the longest window: no users x snapshots x events cross product. -#}
{%- set windows = var('uba__feature_windows') | sort -%}
{%- set max_window = windows | max -%}
{%- set top_event_types = var('uba__top_event_types') -%}
{%- set timeout_seconds = (var('uba__session_timeout_minutes') | int) * 60 -%}
{%- set recent_days = 30 -%}
{%- set no_purchase_days = 9999 -%}

with snapshot_dates as (

    select as_of_date
    from {{ ref('int_feature_snapshot_dates') }}
    {% if is_incremental() -%}
    {#- Re-build the newest snapshots again: late events may still land in them. -#}
    where as_of_date >= (
        select {{ dbt.dateadd('day', -7 * feature_lookback_weeks(), 'max(as_of_date)') }}
        from {{ this }}
    )
    {%- endif %}

),

user_days as (

    select * from {{ ref('int_feature_user_days') }}

),

user_day_items as (

    select * from {{ ref('int_feature_user_day_items') }}

),

events as (

    select
        user_id,
        event_id,
        event_ts,
        received_at
    from {{ ref('fct_events') }}

),

-- Eligible (user, snapshot) pairs are exactly those with a visible event in the longest window.
windowed as (

    select
        user_days.user_id,
        snapshot_dates.as_of_date,
        {% for window in windows -%}
        {%- set in_window -%}
            user_days.event_date >= {{ dbt.dateadd('day', -window, 'snapshot_dates.as_of_date') }}
        {%- endset %}
        sum(case when {{ in_window }} then user_days.count_events else 0 end)
            as count_events_{{ window }}d,
        sum(case when {{ in_window }} then 1 else 0 end) as count_active_days_{{ window }}d,
        sum(case when {{ in_window }} then user_days.sum_revenue_usd else 0 end)
            as sum_revenue_usd_{{ window }}d,
        {% for event_type in top_event_types -%}
        sum(case when {{ in_window }} then user_days.count_{{ event_type }} else 0 end)
            as count_{{ event_type }}_{{ window }}d,
        {% endfor -%}
        {% endfor -%}
        sum(case
            when user_days.event_date < {{ dbt.dateadd('day', -7, 'snapshot_dates.as_of_date') }}
                and user_days.event_date
                    >= {{ dbt.dateadd('day', -37, 'snapshot_dates.as_of_date') }}
                then user_days.count_events
            else 0
        end) as count_events_prior_30d,
        min(case
            when user_days.event_date
                >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}
                then user_days.first_event_at
        end) as first_event_at_30d,
        max(case
            when user_days.event_date
                >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}
                then user_days.last_event_at
        end) as last_event_at_30d,
        sum(
            user_days.count_events * exp(
                -0.6931471805599453
                * {{ feature_days_between('user_days.event_date', 'snapshot_dates.as_of_date') }}
                / 7.0
            )
        ) as decayed_activity_score_90d
    from user_days
    inner join snapshot_dates
        on user_days.available_date < snapshot_dates.as_of_date
        and user_days.event_date
            >= {{ dbt.dateadd('day', -max_window, 'snapshot_dates.as_of_date') }}
    group by 1, 2

),

-- Lifetime aggregates: each user-day row enters the first snapshot after it became available;
-- running totals per user over those entry weeks, valid until the next entry week.
lifetime_rows as (

    select
        user_days.*,
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'user_days.available_date')) }}
            as date) as visible_from,
        row_number() over (
            partition by user_days.user_id, user_days.event_date
            order by user_days.available_date
        ) as nth_row_of_day
    from user_days

),

lifetime_weekly as (

    select
        user_id,
        visible_from,
        sum(count_events) as count_events,
        sum(case when nth_row_of_day = 1 then 1 else 0 end) as count_new_active_days,
        sum(count_purchases) as count_purchases,
        sum(sum_revenue_usd) as sum_revenue_usd,
        sum(sum_purchase_revenue_usd) as sum_purchase_revenue_usd,
        min(first_event_at) as first_event_at,
        max(last_event_at) as last_event_at,
        max(last_purchase_at) as last_purchase_at
    from lifetime_rows
    group by 1, 2

),

lifetime_running as (

    select
        user_id,
        visible_from,
        lead(visible_from) over (partition by user_id order by visible_from) as visible_until,
        {%- for measure in ['count_events', 'count_new_active_days', 'count_purchases',
                            'sum_revenue_usd', 'sum_purchase_revenue_usd'] %}
        sum({{ measure }}) over (
            partition by user_id order by visible_from rows between unbounded preceding and current row
        ) as {{ measure }},
        {%- endfor %}
        min(first_event_at) over (
            partition by user_id order by visible_from rows between unbounded preceding and current row
        ) as first_event_at,
        max(last_event_at) over (
            partition by user_id order by visible_from rows between unbounded preceding and current row
        ) as last_event_at,
        max(last_purchase_at) over (
            partition by user_id order by visible_from rows between unbounded preceding and current row
        ) as last_purchase_at
    from lifetime_weekly

),

lifetime as (

    select
        windowed.user_id,
        windowed.as_of_date,
        lifetime_running.count_events,
        lifetime_running.count_new_active_days as count_active_days,
        lifetime_running.count_purchases,
        lifetime_running.sum_revenue_usd,
        lifetime_running.sum_purchase_revenue_usd,
        lifetime_running.first_event_at,
        lifetime_running.last_event_at,
        lifetime_running.last_purchase_at
    from windowed
    inner join lifetime_running
        on windowed.user_id = lifetime_running.user_id
        and lifetime_running.visible_from <= windowed.as_of_date
        and (
            lifetime_running.visible_until is null
            or lifetime_running.visible_until > windowed.as_of_date
        )

),

diversity as (

    select
        user_day_items.user_id,
        snapshot_dates.as_of_date,
        count(distinct user_day_items.event_name) as count_distinct_event_names_30d,
        count(distinct user_day_items.feature) as count_distinct_features_30d
    from user_day_items
    inner join snapshot_dates
        on user_day_items.available_date < snapshot_dates.as_of_date
        and user_day_items.event_date
            >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}
    group by 1, 2

),

-- Sessions are re-cut per snapshot from the events visible then (gap rule), so an event that
-- arrives late cannot merge or split sessions of an earlier snapshot.
recent_events as (

    select
        events.user_id,
        snapshot_dates.as_of_date,
        events.event_id,
        events.event_ts
    from events
    inner join snapshot_dates
        on events.event_ts < snapshot_dates.as_of_date
        and events.received_at < snapshot_dates.as_of_date
        and events.event_ts
            >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}

),

recent_gaps as (

    select
        *,
        case
            when lag(event_ts) over (
                partition by user_id, as_of_date order by event_ts, event_id
            ) is null then 1
            when {{ dbt.datediff(
                'lag(event_ts) over (partition by user_id, as_of_date order by event_ts, event_id)',
                'event_ts', 'second') }} > {{ timeout_seconds }} then 1
            else 0
        end as is_session_start
    from recent_events

),

recent_numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by user_id, as_of_date order by event_ts, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from recent_gaps

),

recent_sessions as (

    select
        user_id,
        as_of_date,
        session_number,
        {{ dbt.datediff('min(event_ts)', 'max(event_ts)', 'second') }} as duration_seconds
    from recent_numbered
    group by 1, 2, 3

),

session_stats as (

    select
        user_id,
        as_of_date,
        count(*) as count_sessions_30d,
        avg(duration_seconds) as avg_session_duration_seconds_30d,
        max(duration_seconds) as max_session_duration_seconds_30d
    from recent_sessions
    group by 1, 2

),

final as (

    select
        windowed.user_id,
        windowed.as_of_date,
        cast({{ feature_days_between('cast(lifetime.first_event_at as date)', 'windowed.as_of_date') }}
            as bigint) as tenure_days,
        cast({{ feature_days_between('cast(lifetime.last_event_at as date)', 'windowed.as_of_date') }}
            as bigint) as days_since_last_event,
        cast(lifetime.count_events as bigint) as count_events_lifetime,
        cast(lifetime.count_active_days as bigint) as count_active_days_lifetime,
        cast(lifetime.sum_revenue_usd as {{ uba_type_double() }}) as sum_revenue_usd_lifetime,
        cast(lifetime.count_purchases as bigint) as count_purchases_lifetime,
        cast({{ feature_safe_divide('lifetime.sum_purchase_revenue_usd', 'lifetime.count_purchases') }}
            as {{ uba_type_double() }}) as avg_order_value_usd_lifetime,
        cast(coalesce(
            {{ feature_days_between('cast(lifetime.last_purchase_at as date)', 'windowed.as_of_date') }},
            {{ no_purchase_days }}
        ) as bigint) as days_since_last_purchase,
        {% for window in windows -%}
        cast(windowed.count_events_{{ window }}d as bigint) as count_events_{{ window }}d,
        cast(windowed.count_active_days_{{ window }}d as bigint)
            as count_active_days_{{ window }}d,
        cast(windowed.sum_revenue_usd_{{ window }}d as {{ uba_type_double() }})
            as sum_revenue_usd_{{ window }}d,
        {% for event_type in top_event_types -%}
        cast(windowed.count_{{ event_type }}_{{ window }}d as bigint)
            as count_{{ event_type }}_{{ window }}d,
        {% endfor -%}
        {% endfor -%}
        {% for event_type in top_event_types -%}
        cast({{ feature_safe_divide(
            'windowed.count_' ~ event_type ~ '_' ~ max_window ~ 'd',
            'windowed.count_events_' ~ max_window ~ 'd') }} as {{ uba_type_double() }})
            as share_{{ event_type }}_{{ max_window }}d,
        {% endfor -%}
        cast(coalesce(session_stats.count_sessions_30d, 0) as bigint) as count_sessions_30d,
        cast(coalesce(session_stats.avg_session_duration_seconds_30d, 0)
            as {{ uba_type_double() }}) as avg_session_duration_seconds_30d,
        cast(coalesce(session_stats.max_session_duration_seconds_30d, 0)
            as {{ uba_type_double() }}) as max_session_duration_seconds_30d,
        {#- (events in the last 7 days + 1) / (weekly average of the 30 days before + 1):
            1 = steady, > 1 = rising, < 1 = falling; the +1 keeps it defined for new users. -#}
        cast(
            (windowed.count_events_7d + 1.0) / (windowed.count_events_prior_30d * 7.0 / 30.0 + 1.0)
            as {{ uba_type_double() }}
        ) as trend_ratio_events_7d_30d,
        cast(coalesce(diversity.count_distinct_event_names_30d, 0) as bigint)
            as count_distinct_event_names_30d,
        cast(coalesce(diversity.count_distinct_features_30d, 0) as bigint)
            as count_distinct_features_30d,
        {#- Fewer than two events in 30 days: the window length, "as slow as we can measure". -#}
        cast(case
            when windowed.count_events_30d >= 2
                then {{ dbt.datediff('windowed.first_event_at_30d', 'windowed.last_event_at_30d', 'second') }}
                    * 1.0 / (windowed.count_events_30d - 1)
            else {{ recent_days * 86400 }}
        end as {{ uba_type_double() }}) as avg_seconds_between_events_30d,
        cast(windowed.decayed_activity_score_90d as {{ uba_type_double() }}) as decayed_activity_score_90d
    from windowed
    inner join lifetime
        on windowed.user_id = lifetime.user_id
        and windowed.as_of_date = lifetime.as_of_date
    left join session_stats
        on windowed.user_id = session_stats.user_id
        and windowed.as_of_date = session_stats.as_of_date
    left join diversity
        on windowed.user_id = diversity.user_id
        and windowed.as_of_date = diversity.as_of_date

)

select * from final
