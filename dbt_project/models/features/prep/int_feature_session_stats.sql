{#- Incremental per person (macros/feature_helpers.sql, feature_per_person_config), reading
    which people changed in int_events_sessionized. -#}
-- depends_on: {{ ref('int_events_sessionized') }}
{{ config(**feature_per_person_config()) }}
{#- Feature family "sessions": sessions in the recent window (uba__feature_recent_days) before
    each snapshot D, cut from the events visible then (event_ts and received_at before D) with
    the very rule of int_events_sessionized (macro uba_sessionize), so an event that arrives
    late cannot merge or split the sessions of an earlier snapshot. A session that began before
    the window counts from its first event inside it.

    Not re-cut per snapshot: a stretch of int_events_sessionized (events up to a boundary that
    is not a max-length split) that lies inside [D - recent, D) with every event received
    before D has, for D, exactly its sessions in the mart; removing events can only add
    boundaries, so other stretches stay apart too. Only the stretches a snapshot clips (begun
    before the window, going on after D) or that hold an event received on or after D are re-cut
    from their visible events, per snapshot: a few stretches instead of ~4 copies of every event.
    With uba__session_end_events set, a late end event can join two stretches, so that setting
    re-cuts every snapshot's window (the rule of old, exact, slower). -#}
{%- set recent_days = var('uba__feature_recent_days') | int -%}
{%- set sessionized = ref('int_events_sessionized') -%}

with

{{ feature_per_person_ctes() }},

{#- the events a run reads, for a read of int_events_sessionized under the alias given (written
    out in each read: a CTE read twice would be materialized) -#}
{%- set events_in_reach = {} -%}
{%- for alias in ['', 'events.'] -%}
    {%- set condition -%}
    {{ alias }}event_ts >= (
        select {{ dbt.dateadd('day', -recent_days, 'min(as_of_date)') }} from snapshot_dates
    )
        {{- feature_and_rebuilt_from(alias ~ 'event_ts', recent_days, dbt.type_timestamp()) }}
        {{- feature_changed_people_only(alias ~ 'user_id') }}
    {%- endset -%}
    {%- do events_in_reach.update({alias: condition}) -%}
{%- endfor %}

{#- a stretch's last event or receipt, whichever is later -#}
{%- set last_seen_at = 'case when last_received_at > stretch_ended_at then last_received_at'
    ~ ' else stretch_ended_at end' %}

{% if not var('uba__session_end_events') %}

{#- one read of the events: the mart's sessions, then its stretches with their sessions' count,
    total and longest duration -#}
sessions as (

    select
        user_id,
        stretch_started_at,
        session_id,
        max(event_ts) as session_ended_at,
        max(received_at) as last_received_at,
        {{ dbt.datediff('min(event_ts)', 'max(event_ts)', 'second') }} as duration_seconds
    from {{ sessionized }}
    where {{ events_in_reach[''] }}
    group by 1, 2, 3

),

stretches as (

    select
        user_id,
        stretch_started_at,
        max(session_ended_at) as stretch_ended_at,
        max(last_received_at) as last_received_at,
        count(*) as count_sessions,
        sum(duration_seconds) as sum_duration_seconds,
        max(duration_seconds) as max_duration_seconds
    from sessions
    group by 1, 2

),

{#- A stretch is whole for the snapshots D with its start in [D - recent, D) and its last event
    and last receipt before D: the Mondays from the first after both to the last on or before
    start + recent. Stretches with the same such range are summed before the join. -#}
whole_ranges as (

    select
        user_id,
        cast({{ dbt.dateadd('day', 7, dbt.date_trunc('week', last_seen_at)) }} as date)
            as first_as_of_date,
        cast({{ dbt.date_trunc('week', dbt.dateadd('day', recent_days, 'stretch_started_at')) }}
            as date) as last_as_of_date,
        sum(count_sessions) as count_sessions,
        sum(sum_duration_seconds) as sum_duration_seconds,
        max(max_duration_seconds) as max_duration_seconds
    from stretches
    group by 1, 2, 3

),

whole_stretch_sessions as (

    select
        whole_ranges.user_id,
        snapshot_dates.as_of_date,
        sum(whole_ranges.count_sessions) as count_sessions,
        sum(whole_ranges.sum_duration_seconds) as sum_duration_seconds,
        max(whole_ranges.max_duration_seconds) as max_duration_seconds
    from whole_ranges
    inner join snapshot_dates
        on snapshot_dates.as_of_date >= whole_ranges.first_as_of_date
        and snapshot_dates.as_of_date <= whole_ranges.last_as_of_date
    group by 1, 2

),

{#- The snapshots that see part of a stretch (it overlaps [D - recent, D) and is not whole for
    D): D in (start, last event + recent] but not in (last event or receipt, start + recent],
    i.e. D in (start, the later of the two] (begun before D, going on after it or received on or
    after it), or in (start + recent, last event + recent] (begun before the window). Two narrow
    ranges per stretch, seldom holding a Monday, instead of every overlapping snapshot. -#}
{%- set window_end = dbt.dateadd('day', recent_days, 'stretch_ended_at') %}
{%- set window_start = dbt.dateadd('day', recent_days, 'stretch_started_at') %}
clipped_ranges as (

    select
        user_id,
        stretch_started_at,
        stretch_started_at as range_after,
        case when {{ last_seen_at }} < {{ window_end }} then {{ last_seen_at }}
            else {{ window_end }} end as range_until
    from stretches
    union all
    select
        user_id,
        stretch_started_at,
        case when {{ last_seen_at }} > {{ window_start }} then {{ last_seen_at }}
            else {{ window_start }} end as range_after,
        {{ window_end }} as range_until
    from stretches

),

stretch_snapshots as (

    select
        clipped_ranges.user_id,
        clipped_ranges.stretch_started_at,
        snapshot_dates.as_of_date
    from clipped_ranges
    inner join snapshot_dates
        on snapshot_dates.as_of_date > clipped_ranges.range_after
        and snapshot_dates.as_of_date <= clipped_ranges.range_until
    {# the first Monday after the range's start is in it: most ranges hold none #}
    where {{ dbt.dateadd('day', 7, dbt.date_trunc('week', 'clipped_ranges.range_after')) }}
        <= clipped_ranges.range_until

),

clipped_events as (

    select
        events.user_id,
        stretch_snapshots.as_of_date,
        {#- renamed: the macro computes its own stretch_started_at (of the re-cut stretches) #}
        events.stretch_started_at as mart_stretch_started_at,
        events.event_id,
        events.event_ts
    from {{ sessionized }} as events
    inner join stretch_snapshots
        on events.user_id = stretch_snapshots.user_id
        and events.stretch_started_at = stretch_snapshots.stretch_started_at
    where {{ events_in_reach['events.'] }}
        and events.event_ts
            >= {{ dbt.dateadd('day', -recent_days, 'stretch_snapshots.as_of_date') }}
        and events.event_ts < stretch_snapshots.as_of_date
        and events.received_at < stretch_snapshots.as_of_date

),

recut as (

    {{ uba_sessionize(
        'clipped_events',
        partition_by=['user_id', 'as_of_date', 'mart_stretch_started_at'],
        numbered=false,
    ) }}

),

recut_sessions as (

    select
        user_id,
        as_of_date,
        {{ dbt.datediff('min(event_ts)', 'max(event_ts)', 'second') }} as duration_seconds
    from recut
    group by user_id, as_of_date, mart_stretch_started_at, stretch_number, max_length_window

),

window_sessions as (

    select
        user_id,
        as_of_date,
        count_sessions,
        sum_duration_seconds,
        max_duration_seconds
    from whole_stretch_sessions
    union all
    select
        user_id,
        as_of_date,
        1 as count_sessions,
        duration_seconds as sum_duration_seconds,
        duration_seconds as max_duration_seconds
    from recut_sessions

),

{% else %}

visible_events as (

    select
        events.user_id,
        snapshot_dates.as_of_date,
        events.event_id,
        events.event_name,
        events.event_ts
    from {{ sessionized }} as events
    inner join snapshot_dates
        on events.event_ts < snapshot_dates.as_of_date
        and events.received_at < snapshot_dates.as_of_date
        and events.event_ts
            >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}
    where {{ events_in_reach['events.'] }}

),

sessionized as (

    {{ uba_sessionize('visible_events', partition_by=['user_id', 'as_of_date'], numbered=false) }}

),

window_sessions as (

    select
        user_id,
        as_of_date,
        1 as count_sessions,
        {{ dbt.datediff('min(event_ts)', 'max(event_ts)', 'second') }} as sum_duration_seconds,
        {{ dbt.datediff('min(event_ts)', 'max(event_ts)', 'second') }} as max_duration_seconds
    from sessionized
    group by user_id, as_of_date, stretch_number, max_length_window

),

{% endif %}

final as (

    select
        user_id,
        as_of_date,
        cast(sum(count_sessions) as bigint) as count_sessions_{{ recent_days }}d,
        cast(sum(sum_duration_seconds) as {{ uba_type_double() }}) / sum(count_sessions)
            as avg_session_duration_seconds_{{ recent_days }}d,
        cast(max(max_duration_seconds) as {{ uba_type_double() }})
            as max_session_duration_seconds_{{ recent_days }}d
    from window_sessions
    {{- feature_rows_to_rebuild('user_id', 'as_of_date') }}
    group by 1, 2

)

select * from final
{{- feature_stored_in_order() }}
