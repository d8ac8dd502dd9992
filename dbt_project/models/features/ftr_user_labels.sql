{#- Labels look forward from each snapshot and use every event we know of (received_at does
    not matter here: the label is what happened). A row exists once the shorter horizon has
    matured against the watermark (max event date in the data, not current_date, so rebuilds
    are deterministic); a label whose own horizon has not matured yet is null.
    Incremental. A (person, snapshot) label depends on the person's user-days after the
    snapshot and on which horizons have matured, nothing else; so a run rewrites every row of
    a snapshot whose stored rows do not show what the watermark says now (newly matured, or a
    horizon matured since: labels_rebuilt_dates, read once before the pre-hook deletes) and,
    on the snapshots whose longer horizon (plus the late-event lookback) reaches past the
    watermark, the rows of the people whose events changed since this model last ran (macros
    in uba_batches.sql). The future is summed from weekly buckets of the user-days (each
    user-week once per snapshot, at most ceil(horizon / 7) snapshots), as the windowed
    features are. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config('rows',
    where="{{ labels_rows_to_rebuild('as_of_date', 'user_id') }}")) }}
{%- set churn_days = var('uba__churn_horizon_days') | int -%}
{%- set ltv_days = var('uba__ltv_horizon_days') | int -%}
{%- set longest = [churn_days, ltv_days] | max -%}
{%- set shortest = [churn_days, ltv_days] | min -%}

with watermark as (

    select max(watermark_date) as watermark_date from {{ ref('int_feature_snapshot_dates') }}

),

features as (

    select user_id, as_of_date from {{ ref('ftr_user_features') }}
    {% if is_incremental() -%}
    where {{ labels_rows_to_rebuild('as_of_date', 'user_id') }}
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
    {%- if is_incremental() %}
        and user_id in (select user_id from matured)
    {%- endif %}

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
