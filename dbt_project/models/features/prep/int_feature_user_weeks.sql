{#- Weekly buckets of the user-days, kept as a table so a day's run reads them instead of
    re-aggregating every person's user-days: one row per user, week_end_date (the Monday after
    the bucket's days) and visible_from (the first Monday after the days became available: =
    week_end_date unless part of the week arrived late across a Monday). A bucket carries its
    week's totals (`<measure>_all`) and the totals of its last t days (`<measure>_last_<t>`, the
    days at most t days before its end) for the few t = span mod 7 the windows of
    int_feature_windowed_activity need; int_feature_lifetime_totals adds the buckets up by
    visible_from. A day is active from its first visible row on (active_day). Stored as
    bigint and 18-digit decimals (exact; the sums over buckets widen them again): DuckDB reads
    its 128-bit columns (a sum's default type) several times slower.
    Incremental: the (user, week) pairs holding a user-day with events written since this model
    last ran (macros in uba_batches.sql) are deleted (the pre-hook) and recounted from all of
    that user's user-days of the week. -#}
-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**uba_events_consumer_config('rows',
    where="exists (select 1 from ({{ uba_changed_user_days(ref('int_events_sessionized')) }})"
        ~ " as changed where changed.user_id = {{ this }}.user_id and {{ this }}.week_end_date"
        ~ " = {{ feature_week_end('changed.event_date') }})",
    stale_from="{{ feature_and_changed_days_from('week_end_date') }}")) }}
{%- set half_life = var('uba__feature_decay_half_life_days') -%}
{%- set thresholds = feature_week_thresholds() -%}
{%- set measures = feature_week_measures() -%}

with

{% if is_incremental() -%}
changed_weeks as (

    select distinct user_id, {{ feature_week_end('event_date') }} as week_end_date
    from ({{ uba_changed_user_days(ref('int_events_sessionized')) }}) as changed

),

{% endif -%}
user_days as (

    select
        user_days.*,
        {{ feature_week_end('user_days.event_date') }} as week_end_date,
        {{ feature_week_end('user_days.available_date') }} as visible_from,
        {#- a day counts as active from its first visible row on -#}
        case when row_number() over (
            partition by user_days.user_id, user_days.event_date
            order by user_days.available_date
        ) = 1 then 1 else 0 end as active_day
    from {{ ref('int_feature_user_days') }} as user_days
    {% if is_incremental() -%}
    inner join changed_weeks
        on user_days.user_id = changed_weeks.user_id
        and {{ feature_week_end('user_days.event_date') }} = changed_weeks.week_end_date
    where true
        {#- from the Monday of the earliest changed week at the latest #}
        {{- feature_and_changed_days_from('user_days.event_date', days_before=6) }}
    {%- endif %}

),

week_days as (

    select
        user_days.*,
        {{ dbt.datediff('event_date', 'week_end_date', 'day') }} as days_before_week_end
    from user_days

)

select
    user_id,
    week_end_date,
    visible_from,
    {% for measure in measures -%}
    {%- set value = 'cast(' ~ measure ~ ' as decimal(38, 6))' if measure == 'sum_revenue_usd'
        else measure -%}
    {%- set type = 'decimal(18, 6)' if measure == 'sum_revenue_usd' else 'bigint' -%}
    cast(sum({{ value }}) as {{ type }}) as {{ measure }}_all,
    {% for threshold in thresholds -%}
    cast(sum(case when days_before_week_end <= {{ threshold }}
        then {{ value }} else 0 end) as {{ type }}) as {{ measure }}_last_{{ threshold }},
    {% endfor -%}
    {% endfor -%}
    min(first_event_at) as first_event_at_all,
    max(last_event_at) as last_event_at_all,
    {% for threshold in thresholds -%}
    min(case when days_before_week_end <= {{ threshold }}
        then first_event_at end) as first_event_at_last_{{ threshold }},
    max(case when days_before_week_end <= {{ threshold }}
        then last_event_at end) as last_event_at_last_{{ threshold }},
    {% endfor -%}
    {#- decay within the bucket, to its end Monday: count x 2^(-j / half_life) per day -#}
    {%- set day_decay = 'count_events * exp(-0.6931471805599453 * '
        ~ 'days_before_week_end / ' ~ half_life ~ '.0)' %}
    cast(sum(cast({{ day_decay }} as decimal(38, 9))) as decimal(18, 9)) as decay_all,
    {% for threshold in thresholds -%}
    cast(sum(case when days_before_week_end <= {{ threshold }}
        then cast({{ day_decay }} as decimal(38, 9)) else 0 end) as decimal(18, 9))
        as decay_last_{{ threshold }},
    {% endfor -%}
    {#- the lifetime family's totals (whole weeks only) -#}
    cast(sum(count_purchases) as bigint) as count_purchases_all,
    cast(sum(cast(sum_purchase_revenue_usd as decimal(38, 6))) as decimal(18, 6))
        as sum_purchase_revenue_usd_all,
    max(last_purchase_at) as last_purchase_at_all
from week_days
group by 1, 2, 3
{{- feature_stored_in_order('week_end_date') }}
