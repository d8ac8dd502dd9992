{#- One row per (experiment, person, metric) for people exposed to exactly one variant. The
    metrics come from var uba__experiment_metrics; each is measured after the first exposure
    (value) and over the same span before it (pre_value, the CUPED covariate):
      conversion  1 if event_name happened in (exposed_at, exposed_at + window_days]
                  pre: 1 if it happened in [exposed_at - window_days, exposed_at)
      retention   1 if the person had any event on day `day` after the exposure day
                  pre: number of active days in the `day` days before the exposure day
      revenue     revenue_usd summed over (exposed_at, exposed_at + window_days]
                  pre: the same sum over [exposed_at - window_days, exposed_at)
    is_mature says the whole window lies before the newest event in the warehouse
    (observed_until); results use mature rows only. -#}
{%- set metrics = uba_experiment_metrics() %}
{%- set spans = [] %}
{%- for metric in metrics %}
    {%- do spans.append((metric.window_days if metric.kind != 'retention' else metric.day + 1) | int) %}
{%- endfor %}
{%- set max_span = spans | max if spans else 1 %}
with

exposed as (

    select experiment_key, user_id, variant, first_exposed_at as exposed_at,
        cast(first_exposed_at as date) as exposure_date
    from {{ ref('fct_experiment_exposures') }}
    where not is_multi_variant

),

events as (

    select user_id, event_name, event_ts, event_date, revenue_usd
    from {{ ref('fct_events') }}

),

observed as (

    select max(event_ts) as observed_until from {{ ref('fct_events') }}

),

{#- Each exposed person's events within the longest metric span on either side. -#}
nearby as (

    select
        exposed.experiment_key,
        exposed.user_id,
        exposed.exposed_at,
        exposed.exposure_date,
        events.event_name,
        events.event_ts,
        events.event_date,
        events.revenue_usd
    from exposed
    inner join events
        on exposed.user_id = events.user_id
        and events.event_ts >= {{ dbt.dateadd('day', -max_span, 'exposed.exposed_at') }}
        and events.event_ts <= {{ dbt.dateadd('day', max_span, 'exposed.exposed_at') }}

),

per_person as (

    select
        experiment_key,
        user_id,
        {%- for metric in metrics %}
        {%- if metric.kind == 'conversion' %}
        max(case when event_name = '{{ metric.event_name }}'
            and event_ts > exposed_at
            and event_ts <= {{ dbt.dateadd('day', metric.window_days, 'exposed_at') }}
            then 1 else 0 end) as value_{{ loop.index }},
        max(case when event_name = '{{ metric.event_name }}'
            and event_ts < exposed_at
            and event_ts >= {{ dbt.dateadd('day', -metric.window_days, 'exposed_at') }}
            then 1 else 0 end) as pre_value_{{ loop.index }},
        {%- elif metric.kind == 'retention' %}
        max(case when event_date = cast({{ dbt.dateadd('day', metric.day, 'exposure_date') }} as date)
            then 1 else 0 end) as value_{{ loop.index }},
        count(distinct case when event_date < exposure_date
            and event_date >= cast({{ dbt.dateadd('day', -metric.day, 'exposure_date') }} as date)
            then event_date end) as pre_value_{{ loop.index }},
        {%- else %}
        sum(case when event_ts > exposed_at
            and event_ts <= {{ dbt.dateadd('day', metric.window_days, 'exposed_at') }}
            then cast(revenue_usd as decimal(38, 6)) else 0 end) as value_{{ loop.index }},
        sum(case when event_ts < exposed_at
            and event_ts >= {{ dbt.dateadd('day', -metric.window_days, 'exposed_at') }}
            then cast(revenue_usd as decimal(38, 6)) else 0 end) as pre_value_{{ loop.index }},
        {%- endif %}
        {%- endfor %}
        count(*) as count_nearby_events
    from nearby
    group by 1, 2

),

final as (

    {%- for metric in metrics %}
    select
        exposed.experiment_key,
        exposed.user_id,
        '{{ metric.name }}' as metric_name,
        '{{ metric.kind }}' as metric_kind,
        exposed.variant,
        cast(coalesce(per_person.value_{{ loop.index }}, 0) as {{ uba_type_double() }}) as metric_value,
        cast(coalesce(per_person.pre_value_{{ loop.index }}, 0) as {{ uba_type_double() }})
            as pre_period_value,
        {%- if metric.kind == 'retention' %}
        cast({{ dbt.dateadd('day', metric.day, 'exposed.exposure_date') }} as date)
            < cast(observed.observed_until as date) as is_mature,
        {%- else %}
        {{ dbt.dateadd('day', metric.window_days, 'exposed.exposed_at') }}
            <= observed.observed_until as is_mature,
        {%- endif %}
        exposed.exposed_at,
        observed.observed_until
    from exposed
    cross join observed
    left join per_person
        on exposed.experiment_key = per_person.experiment_key
        and exposed.user_id = per_person.user_id
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

)

select * from final
