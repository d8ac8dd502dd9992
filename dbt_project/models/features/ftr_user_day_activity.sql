{#- Per-user-day activity for the anomaly model (python_models/anomaly), from the events of
    int_events_sessionized. "New" country / device = not seen on any earlier day of the same
    user, so the first day a user is seen never counts as new. Deviation columns compare a day
    with the user's own trailing baseline (up to uba__anomaly_baseline_days previous active
    days): z = (x - mean) / max(std, uba__anomaly_z_std_floor), the means and deviations from
    exact sums (integers, decimals) so that they do not depend on the order rows are added in.
    Bursts: the most events starting in any 10-minute window (the column name max_events_10m
    carries the length), over an exact microsecond key.

    Incremental: for each person whose events changed since this model last ran (macros in
    uba_batches.sql) only the days from the day before the earliest change are recomputed (a
    burst window of the day before can reach into it) and the pre-hook deletes those rows;
    what a recomputed day needs from earlier days comes from them: the countries and devices
    seen before and the first active day (int_user_first_seen, the people's running state:
    not every earlier event) and the baseline's previous active days (the stored rows). -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{%- set first_seen = ref('int_user_first_seen') -%}
{%- set recompute_from = 'cast(' ~ dbt.dateadd('day', -1, 'cast(changed.changed_from_ts as date)') ~ ' as date)' -%}
{{ config(**uba_events_consumer_config('people_since',
    since='{{ this }}.activity_date >= ' ~ recompute_from,
    stale_from="{{ feature_and_changed_days_from('activity_date', days_before=1) }}")) }}
{%- set baseline_days = var('uba__anomaly_baseline_days') | int -%}
{%- set odd_hours_end = var('uba__anomaly_odd_hours_end') | int -%}
{%- set burst_microseconds = 10 * 60 * 1000000 -%}
{%- set std_floor = var('uba__anomaly_z_std_floor') | float -%}
{%- set event_hour = 'cast(extract(hour from event_ts) as integer)' -%}

with

{% if is_incremental() -%}
{#- A person with no stored day left (new, or back after a consent withdrawal dropped their
    rows) is recomputed whole. -#}
{%- set changed_sql %}
    select
        changed.user_id,
        case
            when changed.user_id in (select user_id from {{ this }}) then {{ recompute_from }}
            else cast('1900-01-01' as date)
        end as recompute_from
    from ({{ uba_changed_people(sessionized) }}) as changed
{%- endset %}
{#- A person recomputed whole is read from their first active day (int_user_first_seen). -#}
{%- set first_read_sql %}
    select
        case
            when changed.recompute_from > cast('1900-01-01' as date)
                then changed.recompute_from
            else firsts.first_date
        end
    from ({{ changed_sql }}) as changed
    left join {{ first_seen }} as firsts
        on changed.user_id = firsts.user_id
        and firsts.attribute = 'active'
{%- endset %}
changed as (

    {{ changed_sql }}

),

{#- What the changed people showed before their recomputed days: each country and device
    first seen before them, and the first active day ('active'), with its first day. A first
    day before recompute_from is also the first day among the events before it. -#}
seen_before as (

    select first_seen.user_id, first_seen.attribute, first_seen.value, first_seen.first_date
    from {{ first_seen }} as first_seen
    inner join changed
        on first_seen.user_id = changed.user_id
        and first_seen.first_date < changed.recompute_from

),

{% endif -%}
{#- Not materialized: read five times, and a copy of every event would cost more than five
    scans of a few columns. -#}
events as {{ uba_cte_not_materialized() }} (

    select
        events.user_id,
        events.event_ts,
        cast(events.event_ts as date) as event_date,
        events.event_name,
        events.country,
        events.device,
        {{ event_hour.replace('event_ts', 'events.event_ts') }} as event_hour,
        {{ uba_epoch_microseconds('events.event_ts') }} as event_us
    from {{ sessionized }} as events
    {%- if is_incremental() %}
    inner join changed
        on events.user_id = changed.user_id
        and events.event_ts >= changed.recompute_from
    {# the earliest event read, as a literal: skips the row groups before it #}
    where true
        {{- uba_and_at_or_after('events.event_ts', first_read_sql) }}
    {%- else %}
    where events.user_id is not null
    {%- endif %}

),

bursts as (

    select
        user_id,
        event_date,
        count(*) over (
            partition by user_id
            order by event_us
            range between current row and {{ burst_microseconds }} following
        ) as events_in_burst_window
    from events

),

{%- for attribute in ['country', 'device'] %}
first_{{ attribute }} as (

    select user_id, {{ attribute }}, min(event_date) as first_date
    from events
    where {{ attribute }} is not null
    {%- if is_incremental() %}
        and not exists (
            select 1 from seen_before
            where seen_before.user_id = events.user_id
                and seen_before.attribute = '{{ attribute }}'
                and seen_before.value = events.{{ attribute }}
        )
    {%- endif %}
    group by 1, 2

),

{% endfor -%}
user_start as (

    select user_id, min(event_date) as first_active_date
    from (
        select user_id, event_date from events
        {%- if is_incremental() %}
        union all
        select user_id, first_date from seen_before
        {%- endif %}
    ) as active_dates
    group by 1

),

daily as (

    select
        user_id,
        event_date as activity_date,
        count(*) as count_events,
        sum(case when event_name = 'login' then 1 else 0 end) as count_logins,
        count(distinct country) as count_countries,
        count(distinct device) as count_devices,
        avg(case when event_hour < {{ odd_hours_end }} then 1.0 else 0.0 end)
            as share_odd_hour_events,
        min(case when event_hour < {{ odd_hours_end }} then event_hour end) as first_odd_hour,
        sum(case when event_name = 'password_reset' then 1 else 0 end) as count_password_resets,
        sum(case when event_name = 'settings_changed' then 1 else 0 end)
            as count_settings_changed
    from events
    group by 1, 2

),

daily_bursts as (

    select user_id, event_date as activity_date, max(events_in_burst_window) as max_events_burst
    from bursts
    group by 1, 2

),

new_countries as (

    select
        first_country.user_id,
        first_country.first_date as activity_date,
        count(*) as count_new_countries,
        {{ dbt.listagg('first_country.country', "', '", 'order by first_country.country') }}
            as new_countries
    from first_country
    inner join user_start
        on first_country.user_id = user_start.user_id
    where first_country.first_date > user_start.first_active_date
    group by 1, 2

),

new_devices as (

    select
        first_device.user_id,
        first_device.first_date as activity_date,
        count(*) as count_new_devices,
        {{ dbt.listagg('first_device.device', "', '", 'order by first_device.device') }}
            as new_devices
    from first_device
    inner join user_start
        on first_device.user_id = user_start.user_id
    where first_device.first_date > user_start.first_active_date
    group by 1, 2

),

joined as (

    select
        daily.*,
        daily_bursts.max_events_burst,
        coalesce(new_countries.count_new_countries, 0) as count_new_countries,
        new_countries.new_countries,
        coalesce(new_devices.count_new_devices, 0) as count_new_devices,
        new_devices.new_devices
    from daily
    inner join daily_bursts
        on daily.user_id = daily_bursts.user_id
        and daily.activity_date = daily_bursts.activity_date
    left join new_countries
        on daily.user_id = new_countries.user_id
        and daily.activity_date = new_countries.activity_date
    left join new_devices
        on daily.user_id = new_devices.user_id
        and daily.activity_date = new_devices.activity_date

),

{#- The rows the baseline windows run over: the recomputed days and, incrementally, the
    stored active days before them that a baseline reaches (the pre-hook deleted the rest). -#}
baseline_inputs as (

    select
        user_id,
        activity_date,
        count_events,
        max_events_burst,
        cast(share_odd_hour_events as {{ uba_type_double() }}) as share_odd_hour_events,
        count_settings_changed + count_password_resets as account_changes
    from joined
    {%- if is_incremental() %}
    union all
    select
        user_id,
        activity_date,
        count_events,
        max_events_10m,
        share_odd_hour_events,
        count_settings_changed + count_password_resets
    from (
        select
            stored.*,
            row_number() over (
                partition by stored.user_id order by stored.activity_date desc
            ) as recency
        from {{ this }} as stored
        inner join changed
            on stored.user_id = changed.user_id
        where stored.activity_date < changed.recompute_from
    ) as stored_days
    where recency <= {{ baseline_days }}
    {%- endif %}

),

{#- Windows spelled out in each OVER (Snowflake has no named WINDOW clause). Sums of integers
    and decimals, so the means and deviations do not depend on the order rows are added in
    (a float average over a window does: a recomputed day would differ in the last bits from
    a full build). -#}
{%- set user_history = 'partition by user_id order by activity_date rows between ' ~ baseline_days ~ ' preceding and 1 preceding' %}
{%- set measures = {'events': 'count_events', 'burst': 'max_events_burst', 'account': 'account_changes'} %}
baseline_sums as (

    select
        user_id,
        activity_date,
        count(*) over ({{ user_history }}) as baseline_days,
        {%- for name, column in measures.items() %}
        sum(cast({{ column }} as bigint)) over ({{ user_history }}) as sum_{{ name }},
        sum(cast({{ column }} as bigint) * {{ column }}) over ({{ user_history }})
            as sum_squares_{{ name }},
        {%- endfor %}
        sum(cast(share_odd_hour_events as decimal(38, 15))) over ({{ user_history }})
            as sum_odd_share
    from baseline_inputs

),

{%- set mean = 'cast(baseline_sums.sum_{0} as ' ~ uba_type_double() ~ ') / nullif(baseline_sums.baseline_days, 0)' %}
{%- set std = 'sqrt(cast(baseline_sums.baseline_days * baseline_sums.sum_squares_{0} - baseline_sums.sum_{0} * baseline_sums.sum_{0} as ' ~ uba_type_double() ~ ') / nullif(baseline_sums.baseline_days * (baseline_sums.baseline_days - 1), 0))' %}
baselines as (

    select
        joined.*,
        baseline_sums.baseline_days,
        {{ mean.format('events') }} as baseline_events,
        {{ std.format('events') }} as baseline_events_std,
        {{ mean.format('burst') }} as baseline_burst,
        {{ std.format('burst') }} as baseline_burst_std,
        {{ mean.format('odd_share') }} as baseline_odd_share,
        {{ mean.format('account') }} as baseline_account
    from joined
    inner join baseline_sums
        on joined.user_id = baseline_sums.user_id
        and joined.activity_date = baseline_sums.activity_date

),

final as (

    select
        user_id,
        activity_date,
        cast(count_events as bigint) as count_events,
        cast(count_logins as bigint) as count_logins,
        cast(count_countries as bigint) as count_countries,
        cast(count_devices as bigint) as count_devices,
        cast(count_new_countries as bigint) as count_new_countries,
        new_countries,
        cast(count_new_devices as bigint) as count_new_devices,
        new_devices,
        cast(share_odd_hour_events as {{ uba_type_double() }}) as share_odd_hour_events,
        cast(first_odd_hour as bigint) as first_odd_hour,
        cast(max_events_burst as bigint) as max_events_10m,
        cast(count_password_resets as bigint) as count_password_resets,
        cast(count_settings_changed as bigint) as count_settings_changed,
        cast(baseline_days as bigint) as baseline_days,
        cast(coalesce(baseline_events, count_events) as {{ uba_type_double() }})
            as baseline_events,
        cast(coalesce(
            (count_events - baseline_events)
            / greatest(coalesce(baseline_events_std, 0), {{ std_floor }}), 0
        ) as {{ uba_type_double() }}) as z_events,
        cast(coalesce(
            (max_events_burst - baseline_burst)
            / greatest(coalesce(baseline_burst_std, 0), {{ std_floor }}), 0
        ) as {{ uba_type_double() }}) as z_burst,
        cast(coalesce(share_odd_hour_events - baseline_odd_share, 0)
            as {{ uba_type_double() }}) as odd_share_increase,
        cast(coalesce(
            count_settings_changed + count_password_resets - baseline_account, 0
        ) as {{ uba_type_double() }}) as account_changes_increase,
        cast({{ baseline_days }} as integer) as baseline_window_days
    from baselines

)

select * from final
{{- feature_stored_in_order('activity_date') }}
