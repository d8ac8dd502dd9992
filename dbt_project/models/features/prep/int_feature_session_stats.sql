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

events as (

    select user_id, event_id, event_name, event_ts, received_at, session_id, stretch_started_at
    from {{ sessionized }}
    where event_ts >= (
        select {{ dbt.dateadd('day', -recent_days, 'min(as_of_date)') }} from snapshot_dates
    )
        {{- feature_changed_people_only('user_id') }}

),

{% if not var('uba__session_end_events') %}

stretches as (

    select
        user_id,
        stretch_started_at,
        max(event_ts) as stretch_ended_at,
        max(received_at) as last_received_at
    from events
    group by 1, 2

),

{#- Each stretch with events in a snapshot's window (events in a stretch are at most the
    session timeout apart, so overlapping the window means holding events in it). -#}
stretch_snapshots as (

    select
        stretches.user_id,
        stretches.stretch_started_at,
        snapshot_dates.as_of_date,
        stretches.stretch_started_at
            >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}
            and stretches.stretch_ended_at < snapshot_dates.as_of_date
            and stretches.last_received_at < snapshot_dates.as_of_date as is_whole
    from stretches
    inner join snapshot_dates
        on stretches.stretch_started_at < snapshot_dates.as_of_date
        and stretches.stretch_ended_at
            >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}

),

sessions as (

    select
        user_id,
        stretch_started_at,
        session_id,
        {{ dbt.datediff('min(event_ts)', 'max(event_ts)', 'second') }} as duration_seconds
    from events
    group by 1, 2, 3

),

whole_stretch_sessions as (

    select
        stretch_snapshots.user_id,
        stretch_snapshots.as_of_date,
        sessions.duration_seconds
    from sessions
    inner join stretch_snapshots
        on sessions.user_id = stretch_snapshots.user_id
        and sessions.stretch_started_at = stretch_snapshots.stretch_started_at
    where stretch_snapshots.is_whole

),

clipped_events as (

    select
        events.user_id,
        stretch_snapshots.as_of_date,
        {#- renamed: the macro computes its own stretch_started_at (of the re-cut stretches) #}
        events.stretch_started_at as mart_stretch_started_at,
        events.event_id,
        events.event_name,
        events.event_ts
    from events
    inner join stretch_snapshots
        on events.user_id = stretch_snapshots.user_id
        and events.stretch_started_at = stretch_snapshots.stretch_started_at
    where not stretch_snapshots.is_whole
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

    select user_id, as_of_date, duration_seconds from whole_stretch_sessions
    union all
    select user_id, as_of_date, duration_seconds from recut_sessions

),

{% else %}

visible_events as (

    select
        events.user_id,
        snapshot_dates.as_of_date,
        events.event_id,
        events.event_name,
        events.event_ts
    from events
    inner join snapshot_dates
        on events.event_ts < snapshot_dates.as_of_date
        and events.received_at < snapshot_dates.as_of_date
        and events.event_ts
            >= {{ dbt.dateadd('day', -recent_days, 'snapshot_dates.as_of_date') }}

),

sessionized as (

    {{ uba_sessionize('visible_events', partition_by=['user_id', 'as_of_date'], numbered=false) }}

),

window_sessions as (

    select
        user_id,
        as_of_date,
        {{ dbt.datediff('min(event_ts)', 'max(event_ts)', 'second') }} as duration_seconds
    from sessionized
    group by user_id, as_of_date, stretch_number, max_length_window

),

{% endif %}

final as (

    select
        user_id,
        as_of_date,
        cast(count(*) as bigint) as count_sessions_{{ recent_days }}d,
        cast(avg(duration_seconds) as {{ uba_type_double() }})
            as avg_session_duration_seconds_{{ recent_days }}d,
        cast(max(duration_seconds) as {{ uba_type_double() }})
            as max_session_duration_seconds_{{ recent_days }}d
    from window_sessions
    {{- feature_rows_to_rebuild('user_id', 'as_of_date') }}
    group by 1, 2

)

select * from final
