{#- Acquisition cohorts at three grains plus the segments reports slice by. -#}
with users as (

    select * from {{ ref('dim_users') }}

)

select
    user_id,
    device_mode as device,
    country_mode as country,
    is_identified,
    acquisition_date as cohort_date,
    acquisition_week as cohort_week,
    acquisition_month as cohort_month
from users
