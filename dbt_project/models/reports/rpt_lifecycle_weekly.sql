{#- Users per week and lifecycle status (see fct_user_lifecycle_weekly). -#}
select
    lifecycle_week,
    lifecycle_status,
    cast(count(*) as bigint) as users
from {{ ref('fct_user_lifecycle_weekly') }}
group by 1, 2
