{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    on_schema_change='fail',
) }}
{#- Feature family "windowed activity": counts, active days and revenue per window, event-type
    counts and shares, the trend ratio, event spacing and the decayed activity score.
    This family also fixes the mart's grain: a (user, snapshot) pair exists when the user has a
    visible event (available_date < as_of_date) in the longest window. User-days are joined to
    the snapshot grid with a range condition limited to that window, so there is no users x
    snapshots x events product. Sums of doubles go through uba_exact_sum (bit-identical
    rebuilds). -#}
{%- set windows = var('uba__feature_windows') | sort -%}
{%- set max_window = windows | max -%}
{%- set top_event_types = var('uba__top_event_types') -%}
{%- set recent_days = var('uba__feature_recent_days') | int -%}
{%- set trend_recent = var('uba__feature_trend_recent_days') | int -%}
{%- set trend_baseline = var('uba__feature_trend_baseline_days') | int -%}
{%- set half_life = var('uba__feature_decay_half_life_days') -%}
{%- if trend_recent not in windows -%}
    {{ exceptions.raise_compiler_error(
        'uba__feature_trend_recent_days (' ~ trend_recent ~ ') must be one of uba__feature_windows '
        ~ windows | string) }}
{%- endif -%}

with snapshot_dates as (

    {{ feature_snapshot_dates() }}

),

user_days as (

    select * from {{ ref('int_feature_user_days') }}

),

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
        {{ uba_exact_sum('case when ' ~ in_window ~ ' then user_days.sum_revenue_usd else 0 end') }}
            as sum_revenue_usd_{{ window }}d,
        {% for event_type in top_event_types -%}
        sum(case when {{ in_window }} then user_days.count_{{ event_type }} else 0 end)
            as count_{{ event_type }}_{{ window }}d,
        {% endfor -%}
        {% endfor -%}
        {#- the trend's baseline: the trend_baseline days before the trend_recent ones -#}
        sum(case
            when user_days.event_date
                < {{ dbt.dateadd('day', -trend_recent, 'snapshot_dates.as_of_date') }}
                and user_days.event_date
                    >= {{ dbt.dateadd('day', -(trend_recent + trend_baseline),
                        'snapshot_dates.as_of_date') }}
                then user_days.count_events
            else 0
        end) as count_events_trend_baseline,
        {%- set in_recent -%}
            user_days.event_date >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}
        {%- endset %}
        sum(case when {{ in_recent }} then user_days.count_events else 0 end)
            as count_events_recent,
        min(case when {{ in_recent }} then user_days.first_event_at end) as first_event_at_recent,
        max(case when {{ in_recent }} then user_days.last_event_at end) as last_event_at_recent,
        {{ uba_exact_sum(
            'user_days.count_events * exp(-0.6931471805599453 * '
            ~ feature_days_between('user_days.event_date', 'snapshot_dates.as_of_date')
            ~ ' / ' ~ half_life ~ '.0)', scale=9) }} as decayed_activity_score
    from user_days
    inner join snapshot_dates
        on user_days.available_date < snapshot_dates.as_of_date
        and user_days.event_date
            >= {{ dbt.dateadd('day', -max_window, 'snapshot_dates.as_of_date') }}
    group by 1, 2

),

final as (

    select
        user_id,
        as_of_date,
        {% for window in windows -%}
        cast(count_events_{{ window }}d as bigint) as count_events_{{ window }}d,
        cast(count_active_days_{{ window }}d as bigint) as count_active_days_{{ window }}d,
        cast(sum_revenue_usd_{{ window }}d as {{ uba_type_double() }})
            as sum_revenue_usd_{{ window }}d,
        {% for event_type in top_event_types -%}
        cast(count_{{ event_type }}_{{ window }}d as bigint)
            as count_{{ event_type }}_{{ window }}d,
        {% endfor -%}
        {% endfor -%}
        {% for event_type in top_event_types -%}
        cast({{ feature_safe_divide(
            'count_' ~ event_type ~ '_' ~ max_window ~ 'd',
            'count_events_' ~ max_window ~ 'd') }} as {{ uba_type_double() }})
            as share_{{ event_type }}_{{ max_window }}d,
        {% endfor -%}
        {#- (events in the recent days + 1) / (their rate over the baseline days + 1):
            1 = steady, > 1 = rising, < 1 = falling; the +1 keeps it defined for new users. -#}
        cast(
            (count_events_{{ trend_recent }}d + 1.0)
            / (count_events_trend_baseline * {{ trend_recent }}.0 / {{ trend_baseline }}.0 + 1.0)
            as {{ uba_type_double() }}
        ) as trend_ratio_events_{{ trend_recent }}d_{{ trend_baseline }}d,
        {#- Fewer than two events in the window: the window length, "as slow as we can measure". -#}
        cast(case
            when count_events_recent >= 2
                then {{ dbt.datediff('first_event_at_recent', 'last_event_at_recent', 'second') }}
                    * 1.0 / (count_events_recent - 1)
            else {{ recent_days * 86400 }}
        end as {{ uba_type_double() }}) as avg_seconds_between_events_{{ recent_days }}d,
        cast(decayed_activity_score as {{ uba_type_double() }})
            as decayed_activity_score_{{ max_window }}d
    from windowed

)

select * from final
