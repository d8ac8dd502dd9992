{#- Weekly cohort x week-number retention matrix (period 0 = the acquisition week). -#}
with counts as (

    {{ mart_retention_counts(ref('fct_events'), 'week') }}

),

watermark as (

    select max(event_date) as watermark_date from {{ ref('fct_events') }}

)

select
    counts.cohort_start as cohort_week,
    cast(counts.period_number as integer) as period_week,
    cast(counts.cohort_users as bigint) as cohort_users,
    cast(counts.users_exact as bigint) as users_active_exact,
    cast(counts.users_unbounded as bigint) as users_active_on_or_after,
    {{ feature_safe_divide('counts.users_exact', 'counts.cohort_users') }} as retention_exact,
    {{ feature_safe_divide('counts.users_unbounded', 'counts.cohort_users') }}
        as retention_unbounded,
    {{ dbt.dateadd('week', 'counts.period_number', 'counts.cohort_start') }}
        <= watermark.watermark_date as is_period_observed
from counts
cross join watermark
where {{ dbt.dateadd('week', 'counts.period_number', 'counts.cohort_start') }}
    <= watermark.watermark_date
