{#- Labels look forward from each snapshot and use every event we know of (received_at does
    not matter here: the label is what happened). A row exists once the shorter horizon has
    matured against the watermark (max event date in the data, not current_date, so rebuilds
    are deterministic); a label whose own horizon has not matured yet is null. -#}
{%- set churn_days = var('uba__churn_horizon_days') | int -%}
{%- set ltv_days = var('uba__ltv_horizon_days') | int -%}
{%- set longest = [churn_days, ltv_days] | max -%}
{%- set shortest = [churn_days, ltv_days] | min -%}

with features as (

    select user_id, as_of_date from {{ ref('ftr_user_features') }}

),

watermark as (

    select max(event_date) as watermark_date from {{ ref('fct_events') }}

),

matured as (

    select
        features.user_id,
        features.as_of_date,
        {{ dbt.dateadd('day', churn_days, 'features.as_of_date') }}
            <= watermark.watermark_date as is_churn_matured,
        {{ dbt.dateadd('day', ltv_days, 'features.as_of_date') }}
            <= watermark.watermark_date as is_ltv_matured
    from features
    cross join watermark
    where {{ dbt.dateadd('day', shortest, 'features.as_of_date') }} <= watermark.watermark_date

),

user_days as (

    select user_id, event_date, count_events, sum_revenue_usd
    from {{ ref('int_feature_user_days') }}

),

future as (

    select
        matured.user_id,
        matured.as_of_date,
        sum(case
            when user_days.event_date
                < {{ dbt.dateadd('day', churn_days, 'matured.as_of_date') }}
                then user_days.count_events
            else 0
        end) as count_events_churn_horizon,
        {{ uba_exact_sum(
            'case when user_days.event_date < '
            ~ dbt.dateadd('day', ltv_days, 'matured.as_of_date')
            ~ ' then user_days.sum_revenue_usd else 0 end') }} as sum_revenue_usd_ltv_horizon
    from matured
    inner join user_days
        on matured.user_id = user_days.user_id
        and user_days.event_date >= matured.as_of_date
        and user_days.event_date < {{ dbt.dateadd('day', longest, 'matured.as_of_date') }}
    group by 1, 2

),

final as (

    select
        matured.user_id,
        matured.as_of_date,
        case
            when not matured.is_churn_matured then null
            else coalesce(future.count_events_churn_horizon, 0) = 0
        end as label_churned,
        cast(case
            when not matured.is_ltv_matured then null
            else coalesce(future.sum_revenue_usd_ltv_horizon, 0)
        end as {{ uba_type_double() }}) as label_future_revenue_usd,
        cast({{ churn_days }} as integer) as churn_horizon_days,
        cast({{ ltv_days }} as integer) as ltv_horizon_days
    from matured
    left join future
        on matured.user_id = future.user_id
        and matured.as_of_date = future.as_of_date

)

select * from final
