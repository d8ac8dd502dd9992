{#- One row per day: the time spine MetricFlow joins metrics to (cumulative metrics, filled
    gaps). Covers var uba__time_spine_start .. uba__time_spine_end. -#}
with days as (
    {{ mart_date_spine("cast('" ~ var('uba__time_spine_start') ~ "' as date)",
                       "cast('" ~ var('uba__time_spine_end') ~ "' as date)") }}
)
select cast(spine_date as date) as date_day
from days
