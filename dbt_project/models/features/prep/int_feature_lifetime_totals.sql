-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**feature_per_person_config()) }}
{#- Feature family "lifetime totals": tenure, recency, lifetime counts and revenue, purchases,
    for the (user, snapshot) pairs of int_feature_windowed_activity.
    Each user-day row enters the first snapshot after it became available (visible_from: the
    weekly buckets of int_feature_user_weeks are added up by it); the running totals per user
    over those entry weeks hold until the next entry week. Revenue
    stays an exact decimal through the running sums (bit-identical rebuilds).
    Incremental per person (macros/feature_helpers.sql, feature_per_person_config): the running
    totals of the changed people from all their weeks, and on a snapshot date not stored yet
    everyone's, carried forward: a person whose events did not change starts from their row on
    the newest stored snapshot (its running_* columns: the exact totals it was computed from)
    and adds the weeks visible since; only a person without that row is summed from all their
    weeks. -#}
{%- set no_purchase_days = var('uba__feature_no_purchase_days') | int -%}

with

{{ feature_per_person_ctes() }},

eligible as (

    select user_id, as_of_date
    from {{ ref('int_feature_windowed_activity') }}
    where as_of_date in (select as_of_date from snapshot_dates)
        {{- feature_and_rebuilt_from('as_of_date') }}

),

{% if is_incremental() -%}
{%- set stored_max = feature_per_person_state().stored_max -%}
{#- the people eligible on a snapshot date not stored yet -#}
on_new_dates as (

    select distinct user_id from eligible where as_of_date > {{ stored_max }}

),

{#- their running totals on the newest stored snapshot, where their events did not change (a
    table stored before the running_* columns existed carries nothing: the SQL runs, and dbt's
    on_schema_change check then asks for a full refresh in plain words) -#}
{%- set stored_columns = adapter.get_columns_in_relation(this) | map(attribute='name')
    | map('lower') | list if execute else [] -%}
{%- set can_carry = 'running_first_event_at' in stored_columns or not execute -%}
carried as (

    select
        user_id,
        as_of_date as visible_from,
        count_events_lifetime as count_events,
        count_active_days_lifetime as count_new_active_days,
        count_purchases_lifetime as count_purchases,
        {% if can_carry -%}
        running_sum_revenue_usd as sum_revenue_usd,
        running_sum_purchase_revenue_usd as sum_purchase_revenue_usd,
        running_first_event_at as first_event_at,
        running_last_event_at as last_event_at,
        running_last_purchase_at as last_purchase_at
        {%- else -%}
        cast(null as decimal(18, 6)) as sum_revenue_usd,
        cast(null as decimal(18, 6)) as sum_purchase_revenue_usd,
        cast(null as {{ dbt.type_timestamp() }}) as first_event_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_event_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_purchase_at
        {%- endif %}
    from {{ this }}
    where as_of_date = {{ stored_max }}
        and {{ 'true' if can_carry else 'false' }}
        and not {{ feature_per_person_state().everything }}
        and user_id in (select user_id from on_new_dates)
        and user_id not in (select user_id from changed_people)

),

{#- the people summed from all their weeks -#}
summed_whole as (

    select user_id from changed_people
    union
    select user_id from on_new_dates
    where user_id not in (select user_id from carried)

),

{% endif -%}
{#- Each week's buckets (int_feature_user_weeks) added up by the snapshot they enter; a
    bucket's active days are the days whose first row it holds. In an incremental run, the
    weeks of the people summed whole, and the carried people's newest stored totals as an
    entry on that snapshot followed by the weeks visible after it. -#}
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
    where user_id in (select user_id from summed_whole)
        or (
            visible_from > {{ stored_max }}
            and user_id in (select user_id from carried)
        )
    {%- endif %}
    group by 1, 2
    {%- if is_incremental() %}

    union all

    select * from carried
    {%- endif %}

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
        ) as bigint) as days_since_last_purchase,
        {#- the exact running totals, carried to the next snapshot by an incremental run -#}
        cast(lifetime_running.sum_revenue_usd as decimal(18, 6)) as running_sum_revenue_usd,
        cast(lifetime_running.sum_purchase_revenue_usd as decimal(18, 6))
            as running_sum_purchase_revenue_usd,
        lifetime_running.first_event_at as running_first_event_at,
        lifetime_running.last_event_at as running_last_event_at,
        lifetime_running.last_purchase_at as running_last_purchase_at
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
