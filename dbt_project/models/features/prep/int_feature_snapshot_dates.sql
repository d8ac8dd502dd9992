{#- The weekly snapshot grid (Mondays). The last snapshot is the latest Monday on or before the
    day after the watermark, so the watermark's own day is complete in it. -#}
with events as (

    select event_date from {{ ref('int_feature_user_days') }}

),

bounds as (

    select
        min(event_date) as first_event_date,
        max(event_date) as watermark_date
    from events

),

first_monday as (

    select
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'first_event_date')) }} as date)
            as first_as_of_date,
        cast({{ dbt.dateadd('day', 1, 'watermark_date') }} as date) as last_possible_date,
        watermark_date
    from bounds

),

spine as (

    {{ mart_date_spine(
        '(select first_as_of_date from first_monday)',
        '(select last_possible_date from first_monday)',
        7
    ) }}

)

select
    spine.spine_date as as_of_date,
    first_monday.watermark_date
from spine
cross join first_monday
