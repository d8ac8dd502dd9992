{#- Lifecycle status per user and week (weeks start Monday):
    new          = first active week;
    returning    = active this week and the week before;
    resurrecting = active this week, not the week before, active some earlier week;
    dormant      = not active this week but active the week before (the week they lapsed).
    Weeks of continued inactivity after "dormant" have no row.

    Incremental per person (a consumer of int_events_sessionized, uba_batches.sql): the rows of
    the people whose events changed are recomputed from all their active weeks; so are those
    of the people active from the week the latest active week was before this run, when the
    data's latest week moved (their last run of active weeks gets, or loses, its 'dormant'
    row: macro uba_lifecycle_recomputed_people). Everyone else's rows depend only on their own
    weeks. -#}
{%- set activity_daily = ref('fct_user_activity_daily') -%}
{{ config(**uba_events_consumer_config(
    'rows', where="user_id in (" ~ "{{ uba_lifecycle_recomputed_people(ref('fct_user_activity_daily')) }})"
)) }}
with activity as (

    select distinct
        user_id,
        cast({{ dbt.date_trunc('week', 'activity_date') }} as date) as activity_week
    from {{ activity_daily }}
    {% if is_incremental() -%}
    where user_id in ({{ uba_lifecycle_recomputed_people(activity_daily) }})
    {%- endif %}

),

last_week as (

    select cast({{ dbt.date_trunc('week', 'max(activity_date)') }} as date) as last_activity_week
    from {{ activity_daily }}

),

ordered as (

    select
        user_id,
        activity_week,
        lag(activity_week) over (partition by user_id order by activity_week) as previous_week,
        lead(activity_week) over (partition by user_id order by activity_week) as next_week
    from activity

),

active_rows as (

    select
        user_id,
        activity_week as lifecycle_week,
        case
            when previous_week is null then 'new'
            when previous_week = {{ dbt.dateadd('day', -7, 'activity_week') }} then 'returning'
            else 'resurrecting'
        end as lifecycle_status
    from ordered

),

dormant_rows as (

    select
        ordered.user_id,
        cast({{ dbt.dateadd('day', 7, 'ordered.activity_week') }} as date) as lifecycle_week,
        'dormant' as lifecycle_status
    from ordered
    cross join last_week
    where (ordered.next_week is null
            or ordered.next_week > {{ dbt.dateadd('day', 7, 'ordered.activity_week') }})
        and ordered.activity_week < last_week.last_activity_week

)

select user_id, cast(lifecycle_week as date) as lifecycle_week, lifecycle_status from active_rows
union all
select user_id, lifecycle_week, lifecycle_status from dormant_rows
