{#- Days between two dates as an integer (end - start); portable. -#}
{% macro feature_days_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}

{#- x / y with 0 when y is 0 or null, so numeric features are never null. -#}
{% macro feature_safe_divide(numerator, denominator, default=0) -%}
    case
        when coalesce({{ denominator }}, 0) = 0 then {{ default }}
        else cast({{ numerator }} as {{ uba_type_double() }}) / {{ denominator }}
    end
{%- endmacro %}

{#- Incremental snapshot lookback: uba__late_event_lookback_days rounded up to whole weeks. -#}
{% macro feature_lookback_weeks() -%}
    {{- return(((var('uba__late_event_lookback_days') | int) + 6) // 7) -}}
{%- endmacro %}

{#- The snapshot dates a feature model builds in this run: all of them on a full refresh, else
    the newest stored one minus feature_lookback_weeks() (late events may still land there) and
    every newer one. Each feature family and the mart call it, so they rebuild the same dates. -#}
{% macro feature_snapshot_dates() -%}
    select as_of_date
    from {{ ref('int_feature_snapshot_dates') }}
    {% if is_incremental() -%}
    where as_of_date >= (
        select {{ dbt.dateadd('day', -7 * feature_lookback_weeks(), 'max(as_of_date)') }}
        from {{ this }}
    )
    {%- endif %}
{%- endmacro %}

{#- Weekly buckets (int_feature_windowed_activity, int_feature_diversity, ftr_user_labels): an
    aggregate over bucket rows joined to a snapshot, of `column` over the days of a window of
    `span` days before the snapshot. A row's week_offset m says its week ends 7m days before
    the snapshot; the bucket carries `column`_all (its whole week) and `column`_last_<t> (its
    last t days, the days at most t days before its end). -#}
{% macro feature_in_span(column, span, aggregate='sum', empty='0') -%}
    {{ aggregate }}(case
        {%- if span // 7 > 0 %}
        when week_offset < {{ span // 7 }} then {{ column }}_all
        {%- endif %}
        {%- if span % 7 != 0 %}
        when week_offset = {{ span // 7 }} then {{ column }}_last_{{ span % 7 }}
        {%- endif %}
        else {{ empty }}
    end)
{%- endmacro %}
