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
