-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**feature_per_person_config()) }}
{#- Feature family "lifetime totals": tenure, recency, lifetime counts and revenue, purchases,
    for the (user, snapshot) pairs of int_feature_windowed_activity.
    Each user-day row enters the first snapshot after it became available (visible_from: the
    weekly buckets of int_feature_user_weeks are added up by it); the running totals per user
    over those entry weeks hold until the next entry week. Revenue
    stays an exact decimal through the running sums (bit-identical rebuilds).
    Incremental per person (macros/feature_helpers.sql, feature_per_person_config): the running
    totals of the changed people, and of everyone when a snapshot date is new. -#}
{%- set no_purchase_days = var('uba__feature_no_purchase_days') | int -%}

with

{{ feature_per_person_ctes() }},

eligible as (

    select user_id, as_of_date
    from {{ ref('int_feature_windowed_activity') }}
    where as_of_date in (select as_of_date from snapshot_dates)
        {{- feature_and_rebuilt_from('as_of_date') }}

),

{#- Each week's buckets (int_feature_user_weeks) added up by the snapshot they enter; a
    bucket's active days are the days whose first row it holds. -#}
lifetime_weekly as (

    select
        user_id,
        visible_from,
        sum(count_events_all) as count_events,
        sum(active_day_all) as count_new_active_days,
        sum(count_purchases_all) as count_purchases,
        sum(sum_revenue_usd_all) as sum_revenue_usd,
        sum(sum_purchase_revenue_usd_all) as sum_purchase_revenue_usd,
        min(first_event_at_all) as first_event_at,
        max(last_event_at_all) as last_event_at,
        max(last_purchase_at_all) as last_purchase_at
    from {{ ref('int_feature_user_weeks') }}
    {%- if is_incremental() %}
    where true
        {{- feature_changed_people_only('user_id') }}
    {%- endif %}
    group by 1, 2

),

lifetime_running as (

    select
        user_id,
        visible_from,
        {{ feature_running_totals('visible_from', 'visible_until', [
            ['sum', 'count_events', 'count_events'],
            ['sum', 'count_new_active_days', 'count_new_active_days'],
            ['sum', 'count_purchases', 'count_purchases'],
            ['sum', 'sum_revenue_usd', 'sum_revenue_usd'],
            ['sum', 'sum_purchase_revenue_usd', 'sum_purchase_revenue_usd'],
            ['min', 'first_event_at', 'first_event_at'],
            ['max', 'last_event_at', 'last_event_at'],
            ['max', 'last_purchase_at', 'last_purchase_at'],
        ]) }}
    from lifetime_weekly

),

final as (

    select
        eligible.user_id,
        eligible.as_of_date,
        cast({{ feature_days_between('cast(lifetime_running.first_event_at as date)',
            'eligible.as_of_date') }} as bigint) as tenure_days,
        cast({{ feature_days_between('cast(lifetime_running.last_event_at as date)',
            'eligible.as_of_date') }} as bigint) as days_since_last_event,
        cast(lifetime_running.count_events as bigint) as count_events_lifetime,
        cast(lifetime_running.count_new_active_days as bigint) as count_active_days_lifetime,
        cast(lifetime_running.sum_revenue_usd as {{ uba_type_double() }})
            as sum_revenue_usd_lifetime,
        cast(lifetime_running.count_purchases as bigint) as count_purchases_lifetime,
        cast({{ feature_safe_divide('lifetime_running.sum_purchase_revenue_usd',
            'lifetime_running.count_purchases') }} as {{ uba_type_double() }})
            as avg_order_value_usd_lifetime,
        cast(coalesce(
            {{ feature_days_between('cast(lifetime_running.last_purchase_at as date)',
                'eligible.as_of_date') }},
            {{ no_purchase_days }}
        ) as bigint) as days_since_last_purchase
    from eligible
    inner join lifetime_running
        on eligible.user_id = lifetime_running.user_id
        and lifetime_running.visible_from <= eligible.as_of_date
        and (
            lifetime_running.visible_until is null
            or lifetime_running.visible_until > eligible.as_of_date
        )
    {{- feature_rows_to_rebuild('eligible.user_id', 'eligible.as_of_date') }}

)

select * from final
{{- feature_stored_in_order() }}
