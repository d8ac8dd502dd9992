{#- Labels look forward from each snapshot and use every event we know of (received_at does
    not matter here: the label is what happened). A row exists once the shorter horizon has
    matured against the watermark (max event date in the data, not current_date, so rebuilds
    are deterministic); a label whose own horizon has not matured yet is null.
    Incremental by as_of_date: a run rebuilds the snapshots whose longer horizon (plus the
    late-event lookback) reaches past the previous watermark, the only ones new events or a
    later watermark can change. The future is summed from weekly buckets of the user-days
    (each user-week once per snapshot, at most ceil(horizon / 7) snapshots), as the windowed
    features are. -#}
{{ config(
    materialized=uba_incremental_unless_spark(),
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    on_schema_change='fail',
) }}
{%- set churn_days = var('uba__churn_horizon_days') | int -%}
{%- set ltv_days = var('uba__ltv_horizon_days') | int -%}
{%- set longest = [churn_days, ltv_days] | max -%}
{%- set shortest = [churn_days, ltv_days] | min -%}
{%- set lookback_days = var('uba__late_event_lookback_days') | int -%}

with watermark as (

    select max(watermark_date) as watermark_date from {{ ref('int_feature_snapshot_dates') }}

),

features as (

    select user_id, as_of_date from {{ ref('ftr_user_features') }}
    {% if is_incremental() -%}
    where as_of_date >= (
        select {{ dbt.dateadd('day', -(longest + lookback_days + 7), 'watermark_date') }}
        from watermark
    )
    {%- endif %}

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

{#- A bucket ends on the Monday after its days; a snapshot D sees the bucket ending 7k days
    later as k weeks of future, and the first (horizon mod 7) days of week k = horizon // 7 + 1
    complete a horizon that is not a whole number of weeks. -#}
user_days as (

    select
        user_id,
        count_events,
        sum_revenue_usd,
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'event_date')) }} as date)
            as week_end_date,
        {{ dbt.datediff(dbt.date_trunc('week', 'event_date'), 'event_date', 'day') }}
            as days_into_week
    from {{ ref('int_feature_user_days') }}
    where event_date >= (select min(as_of_date) from matured)

),

buckets as (

    select
        user_id,
        week_end_date,
        sum(count_events) as count_events_all,
        sum(case when days_into_week < {{ churn_days % 7 }} then count_events else 0 end)
            as count_events_first,
        sum(cast(sum_revenue_usd as decimal(38, 6))) as sum_revenue_usd_all,
        sum(case when days_into_week < {{ ltv_days % 7 }}
            then cast(sum_revenue_usd as decimal(38, 6)) else 0 end) as sum_revenue_usd_first
    from user_days
    group by 1, 2

),

future as (

    select
        matured.user_id,
        matured.as_of_date,
        sum(case
            when weeks_ahead <= {{ churn_days // 7 }} then buckets.count_events_all
            when weeks_ahead = {{ churn_days // 7 + 1 }} then buckets.count_events_first
            else 0
        end) as count_events_churn_horizon,
        cast(sum(case
            when weeks_ahead <= {{ ltv_days // 7 }} then buckets.sum_revenue_usd_all
            when weeks_ahead = {{ ltv_days // 7 + 1 }} then buckets.sum_revenue_usd_first
            else 0
        end) as {{ uba_type_double() }}) as sum_revenue_usd_ltv_horizon
    from matured
    inner join (
        select
            buckets.*,
            matured_dates.as_of_date,
            cast({{ dbt.datediff('matured_dates.as_of_date', 'buckets.week_end_date', 'day') }}
                / 7 as integer) as weeks_ahead
        from buckets
        inner join (select distinct as_of_date from matured) as matured_dates
            on buckets.week_end_date > matured_dates.as_of_date
            and buckets.week_end_date
                <= {{ dbt.dateadd('day', 7 * ((longest + 6) // 7 + 1), 'matured_dates.as_of_date') }}
    ) as buckets
        on matured.user_id = buckets.user_id
        and matured.as_of_date = buckets.as_of_date
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
