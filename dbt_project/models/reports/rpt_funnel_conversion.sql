{#- Funnel step counts per acquisition week and segment ('all', 'device', 'country'):
    users reaching each step, conversion from step 1 and from the previous step, and the median
    seconds from the previous step. -#}
{%- set steps = var('uba__funnel_steps') -%}
{%- set segments = {'all': "'all'", 'device': "coalesce(device, 'unknown')",
                    'country': "coalesce(country, 'unknown')"} -%}

with funnel_users as (

    select * from {{ ref('fct_funnel_users') }}

),

segmented as (

    {% for segment_type, segment_sql in segments.items() -%}
    select
        '{{ segment_type }}' as segment_type,
        {{ segment_sql }} as segment_value,
        *
    from funnel_users
    {{ "union all" if not loop.last }}
    {% endfor %}

),

steps as (

    {% for step in steps -%}
    select
        segment_type,
        segment_value,
        cohort_week,
        {{ loop.index }} as step_number,
        '{{ step }}' as step_name,
        count(step_{{ loop.index }}_at) as users,
        {% if loop.first -%}
        cast(null as {{ uba_type_double() }}) as median_seconds_from_previous_step
        {%- else -%}
        percentile_cont(0.5) within group (order by
            {{ dbt.datediff('step_' ~ (loop.index - 1) ~ '_at', 'step_' ~ loop.index ~ '_at', 'second') }}
        ) as median_seconds_from_previous_step
        {%- endif %}
    from segmented
    group by 1, 2, 3
    {{ "union all" if not loop.last }}
    {% endfor %}

),

with_previous as (

    select
        *,
        first_value(users) over (
            partition by segment_type, segment_value, cohort_week order by step_number
        ) as users_first_step,
        lag(users) over (
            partition by segment_type, segment_value, cohort_week order by step_number
        ) as users_previous_step
    from steps

)

select
    segment_type,
    segment_value,
    cohort_week,
    cast(step_number as integer) as step_number,
    step_name,
    cast(users as bigint) as users,
    {{ feature_safe_divide('users', 'users_first_step') }} as conversion_from_first_step,
    case when users_previous_step is null then null
        else {{ feature_safe_divide('users', 'users_previous_step') }}
    end as conversion_from_previous_step,
    cast(median_seconds_from_previous_step as {{ uba_type_double() }})
        as median_seconds_from_previous_step
from with_previous
