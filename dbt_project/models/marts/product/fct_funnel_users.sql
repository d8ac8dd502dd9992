{#- Ordered funnel from var uba__funnel_steps within uba__funnel_conversion_window_days of the
    first step (logic in macro mart_funnel_user_steps), with the user's cohort and segments. -#}
{%- set steps = var('uba__funnel_steps') -%}

with user_steps as (

    {{ mart_funnel_user_steps(ref('fct_events'), steps, var('uba__funnel_conversion_window_days')) }}

),

cohorts as (

    select * from {{ ref('dim_user_cohorts') }}

)

select
    user_steps.user_id,
    cohorts.device,
    cohorts.country,
    cohorts.cohort_week,
    cast(
        {% for step in steps -%}
        case when user_steps.step_{{ loop.index }}_at is not null then 1 else 0 end
        {{- " + " if not loop.last }}
        {% endfor -%}
    as integer) as steps_completed,
    {% for step in steps -%}
    user_steps.step_{{ loop.index }}_at{{ "," if not loop.last }}
    {% endfor %}
from user_steps
left join cohorts on user_steps.user_id = cohorts.user_id
