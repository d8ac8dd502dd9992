{#- Days whose step conversion fell far below its trailing baseline (settings: var
    uba__funnel_incidents). Each (funnel, level, step) day with complete data is scored against
    the pooled conversion of the previous baseline_days days: a one-sided binomial z-score with
    a minimum volume and a minimum relative drop. So that a long incident does not become its
    own baseline, the baseline is recomputed refinement_passes times without the days the
    previous pass flagged. Only flagged days are kept; breakdown 'all' only. -#}
{%- set settings = uba_funnel_incident_settings() -%}
{%- set passes = settings.refinement_passes | int -%}
{%- set keys = ['funnel_name', 'funnel_level', 'step_number'] -%}

with

daily as (

    select
        funnel_name,
        funnel_level,
        step_number,
        step_name,
        attempts_entered,
        attempts_converted,
        conversion_rate,
        period_start as activity_date
    from {{ ref('rpt_funnel_conversion_daily') }}
    where breakdown = 'all'
        and step_number > 1
        and is_complete
        and attempts_entered > 0

),

evaluated_through as (

    select funnel_name, funnel_level, max(activity_date) as evaluated_through_date
    from daily
    group by 1, 2

),

{% for pass in range(passes + 1) -%}
{%- set source = 'daily' if pass == 0 else 'scored_' ~ (pass - 1) -%}
baseline_{{ pass }} as (

    select
        {% for key in keys %}evaluated.{{ key }}, {% endfor %}
        evaluated.step_name,
        evaluated.activity_date,
        evaluated.attempts_entered,
        evaluated.attempts_converted,
        evaluated.conversion_rate,
        count(earlier.activity_date) as baseline_days_used,
        sum(earlier.attempts_entered) as baseline_attempts_entered,
        sum(earlier.attempts_converted) as baseline_attempts_converted,
        {{ feature_safe_divide('sum(earlier.attempts_converted)', 'sum(earlier.attempts_entered)', 'null') }}
            as baseline_conversion_rate
    from daily as evaluated
    left join {{ source }} as earlier
        on {% for key in keys %}evaluated.{{ key }} = earlier.{{ key }} and {% endfor %}earlier.activity_date < evaluated.activity_date
        and earlier.activity_date
            >= {{ dbt.dateadd('day', -(settings.baseline_days | int), 'evaluated.activity_date') }}
        {%- if pass > 0 %}
        and not earlier.is_incident
        {%- endif %}
    group by {% for key in keys %}evaluated.{{ key }}, {% endfor %}evaluated.step_name, evaluated.activity_date,
        evaluated.attempts_entered, evaluated.attempts_converted, evaluated.conversion_rate

),

scored_{{ pass }} as (

    select scores.*, {{ funnel_incident_flag() }} as is_incident
    from ({{ funnel_incident_scored('baseline_' ~ pass) }}) as scores

),

{% endfor -%}

final as (

    select
        scored.funnel_name,
        scored.funnel_level,
        scored.step_name,
        cast(scored.step_number as integer) as step_number,
        cast(scored.attempts_entered as bigint) as attempts_entered,
        cast(scored.attempts_converted as bigint) as attempts_converted,
        cast(scored.baseline_days_used as integer) as baseline_days_used,
        cast(scored.baseline_attempts_entered as bigint) as baseline_attempts_entered,
        cast(scored.baseline_attempts_converted as bigint) as baseline_attempts_converted,
        cast(scored.conversion_rate as {{ uba_type_double() }}) as conversion_rate,
        cast(scored.baseline_conversion_rate as {{ uba_type_double() }})
            as baseline_conversion_rate,
        cast(scored.relative_drop as {{ uba_type_double() }}) as relative_drop,
        cast(scored.z_score as {{ uba_type_double() }}) as z_score,
        cast({{ dbt.datediff('scored.activity_date', 'evaluated_through.evaluated_through_date', 'day') }}
            as integer) as days_before_evaluated_through,
        scored.activity_date as incident_date,
        evaluated_through.evaluated_through_date
    from scored_{{ passes }} as scored
    inner join evaluated_through
        on scored.funnel_name = evaluated_through.funnel_name
        and scored.funnel_level = evaluated_through.funnel_level
    where scored.is_incident

)

select * from final
