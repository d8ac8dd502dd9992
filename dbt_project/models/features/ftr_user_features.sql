{#- Incremental per person (macros/feature_helpers.sql, feature_per_person_config): every
    family is a function of a person's own rows and the snapshot date, so only the changed
    people's rows on the rebuilt snapshot dates, and everyone's on a date not stored yet, are
    written again. -#}
-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**feature_per_person_config()) }}
{#- The feature mart: one join of the feature families (models/features/prep/int_feature_*),
    each one idea and each point in time (only data available before as_of_date):
    - int_feature_windowed_activity: windowed counts, shares, trend, spacing, decay; it also
      fixes the grain (a visible event in the longest window);
    - int_feature_lifetime_totals: tenure, recency, lifetime totals;
    - int_feature_diversity, int_feature_session_stats: recent-window families, absent for a
      user without events in that window (read as 0 here).
    Column meanings, units and reason templates: the column meta in _features__models.yml. -#}
{%- set windows = var('uba__feature_windows') | sort -%}
{%- set max_window = windows | max -%}
{%- set top_event_types = uba_feature_event_types() -%}
{%- set per_event_columns = [] -%}
{%- for event_type in top_event_types -%}
    {%- for window in windows -%}
        {%- do per_event_columns.append('count_' ~ event_type ~ '_' ~ window ~ 'd') -%}
    {%- endfor -%}
    {%- do per_event_columns.append('share_' ~ event_type ~ '_' ~ max_window ~ 'd') -%}
{%- endfor -%}
{{- uba_assert_columns_documented(per_event_columns) -}}
{%- set recent = var('uba__feature_recent_days') | int -%}
{%- set trend = 'trend_ratio_events_' ~ var('uba__feature_trend_recent_days') ~ 'd_'
    ~ var('uba__feature_trend_baseline_days') ~ 'd' -%}

with

{{ feature_per_person_ctes() }},

{#- the rows this run writes, chosen before the other families are joined to them -#}
windowed as (

    select windowed.*
    from {{ ref('int_feature_windowed_activity') }} as windowed
    inner join snapshot_dates
        on windowed.as_of_date = snapshot_dates.as_of_date
        {{- feature_and_rebuilt_from('windowed.as_of_date') }}
    {{- feature_rows_to_rebuild('windowed.user_id', 'windowed.as_of_date') }}

),

lifetime as (

    select * from {{ ref('int_feature_lifetime_totals') }}
    where as_of_date in (select as_of_date from snapshot_dates)
        {{- feature_and_rebuilt_from('as_of_date') }}

),

diversity as (

    select * from {{ ref('int_feature_diversity') }}
    where as_of_date in (select as_of_date from snapshot_dates)
        {{- feature_and_rebuilt_from('as_of_date') }}

),

session_stats as (

    select * from {{ ref('int_feature_session_stats') }}
    where as_of_date in (select as_of_date from snapshot_dates)
        {{- feature_and_rebuilt_from('as_of_date') }}

),

final as (

    select
        windowed.user_id,
        windowed.as_of_date,
        lifetime.tenure_days,
        lifetime.days_since_last_event,
        lifetime.count_events_lifetime,
        lifetime.count_active_days_lifetime,
        lifetime.sum_revenue_usd_lifetime,
        lifetime.count_purchases_lifetime,
        lifetime.avg_order_value_usd_lifetime,
        lifetime.days_since_last_purchase,
        {% for window in windows -%}
        windowed.count_events_{{ window }}d,
        windowed.count_active_days_{{ window }}d,
        windowed.sum_revenue_usd_{{ window }}d,
        {% for event_type in top_event_types -%}
        windowed.count_{{ event_type }}_{{ window }}d,
        {% endfor -%}
        {% endfor -%}
        {% for event_type in top_event_types -%}
        windowed.share_{{ event_type }}_{{ max_window }}d,
        {% endfor -%}
        coalesce(session_stats.count_sessions_{{ recent }}d, 0) as count_sessions_{{ recent }}d,
        coalesce(session_stats.avg_session_duration_seconds_{{ recent }}d, 0)
            as avg_session_duration_seconds_{{ recent }}d,
        coalesce(session_stats.max_session_duration_seconds_{{ recent }}d, 0)
            as max_session_duration_seconds_{{ recent }}d,
        windowed.{{ trend }},
        coalesce(diversity.count_distinct_event_names_{{ recent }}d, 0)
            as count_distinct_event_names_{{ recent }}d,
        coalesce(diversity.count_distinct_features_{{ recent }}d, 0)
            as count_distinct_features_{{ recent }}d,
        windowed.avg_seconds_between_events_{{ recent }}d,
        windowed.decayed_activity_score_{{ max_window }}d
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
{{- feature_stored_in_order() }}
