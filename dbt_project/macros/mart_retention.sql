{#- One retention report for every grain (rpt_retention_daily / weekly / monthly): per acquisition
    cohort and period, from mart_retention_counts over fct_events; the events that count as a
    return are var('uba__retention_return_events') (empty = any event).
    Columns: cohort_date | cohort_week | cohort_month, period_day | period_week | period_month,
    cohort_users, users_active_exact, users_active_on_or_after, retention_exact,
    retention_unbounded, is_period_observed (the period starts on or before the watermark, the
    last event date). `periods`: a list to report (none = every period seen);
    `observed_only` drops the periods after the watermark. -#}
{% macro mart_retention_report(grain, periods=none, observed_only=true) -%}
    {%- set cohort_column = 'cohort_date' if grain == 'day' else 'cohort_' ~ grain -%}
    {%- set period_start = dbt.dateadd(grain, 'counts.period_number', 'counts.cohort_start') -%}
    {%- set return_events = var('uba__retention_return_events') -%}
    {%- set return_filter = none -%}
    {%- if return_events -%}
        {%- set quoted = [] -%}
        {%- for name in return_events -%}
            {%- do quoted.append("'" ~ (name | replace("'", "''")) ~ "'") -%}
        {%- endfor -%}
        {%- set return_filter = 'event_name in (' ~ (quoted | join(', ')) ~ ')' -%}
    {%- endif %}
    {#- When any event counts as a return, a user's active days say as much as their events
        (cohorts and periods are whole days or longer) at a fraction of the rows. -#}
    {%- set returns = ref('fct_events') if return_filter else
        '(select user_id, cast(null as ' ~ dbt.type_string() ~ ') as event_name, '
        ~ 'activity_date as event_ts from ' ~ ref('fct_user_activity_daily') ~ ') as active_days' %}
    with counts as (

        {{ mart_retention_counts(returns, grain, periods, return_filter,
            one_row_per_period=(grain == 'day' and not return_filter)) }}

    ),

    watermark as (

        select max(event_date) as watermark_date from {{ ref('fct_events') }}

    )

    select
        counts.cohort_start as {{ cohort_column }},
        cast(counts.period_number as integer) as period_{{ grain }},
        cast(counts.cohort_users as bigint) as cohort_users,
        cast(counts.users_exact as bigint) as users_active_exact,
        cast(counts.users_unbounded as bigint) as users_active_on_or_after,
        {{ feature_safe_divide('counts.users_exact', 'counts.cohort_users') }} as retention_exact,
        {{ feature_safe_divide('counts.users_unbounded', 'counts.cohort_users') }}
            as retention_unbounded,
        {{ period_start }} <= watermark.watermark_date as is_period_observed
    from counts
    cross join watermark
    {% if observed_only -%}
    where {{ period_start }} <= watermark.watermark_date
    {%- endif %}
{%- endmacro %}
