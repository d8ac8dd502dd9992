{#- One row per event with its stitched person and its session: the only per-event table
    between staging and the marts. Stitching (macro uba_stitch) and sessions (macro
    uba_sessionize) run over narrow rows in one query; the wide staged columns join back once.

    Incremental (delete+insert on event_id), a run costs what changed:
    1. new events = the load batches staging has and this table has not (load_id, written in as
       literals: macro uba_new_loads);
    2. stitching is recomputed on the devices of the new events, from the last identified
       event before the earliest new one (anonymous events before it keep their neighbours);
    3. changed events = new ones and those whose person key moved;
    4. each person who gains or loses an event is re-cut from their earliest change when their
       latest stored event before it lies more than the session timeout earlier (a returning
       person: the change starts a stretch, whatever came before), otherwise from the last
       stretch start (a session boundary that is not a max-length split) before it (macro
       uba_recut_restart_before_change): everything before it is untouched, and session_index
       continues from the stored one.
    A full refresh (or --full-refresh) computes the same rows from everything
    (tests/integration/test_dbt_core.py checks incremental = full refresh).
    batch_id numbers the runs that wrote rows (1 = the full build); previous_user_id is the
    person an event moved away from in that run. Downstream incremental models read the rows
    of the batches they have not consumed (macros in uba_batches.sql). -#}
{{
    config(
        materialized=uba_incremental_unless_spark(),
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=["{{ uba_forget_consumers_on_full_refresh() }}"],
        meta={'uba_replaced_from': 'event_ts'},
    )
}}
{#- The staged events are read by relation name, not through a `select *` CTE: DuckDB may
    materialize a CTE that is read more than once, a full copy of the wide table. -#}
{%- set staged = ref('stg_app__events') -%}
{#- The staged columns this table copies (an incremental run reads a stored event's copy). -#}
{%- set staged_columns = [
    'event_id', 'user_hash', 'anonymous_hash', 'event_name', 'event_ts', 'received_at',
    'session_hint', 'revenue_usd', 'currency', 'page', 'device', 'country', 'plan', 'feature',
    'load_id'] -%}

with

{% if not is_incremental() %}

to_sessionize as (

    select
        user_id,
        event_id,
        event_ts,
        event_name,
        is_identified,
        cast(null as {{ dbt.type_string() }}) as previous_user_id
    from ({{ uba_stitch(staged, ['event_id', 'event_ts', 'event_name']) }}) as stitched

),

{% else %}

batch as (

    select coalesce(max(batch_id), 0) + 1 as batch_id from {{ this }}

),

new_events as (

    select event_id, user_hash, anonymous_hash, event_ts, event_name
    from {{ staged }}
    where {{ uba_new_loads(staged, 'select distinct load_id from ' ~ this) }}

),

{#- Stitching of a device changes only after the last identified event that precedes its new
    events; without one (a device identified for the first time, or out-of-order arrivals
    before every identification) the whole device is recomputed. -#}
touched_devices as (

    select anonymous_hash, min(event_ts) as first_new_event_ts
    from new_events
    where anonymous_hash is not null
    group by 1

),

restitch_bounds as (

    select
        touched_devices.anonymous_hash,
        max(device_events.event_ts) as restitch_from_ts
    from touched_devices
    left join {{ staged }} as device_events
        on touched_devices.anonymous_hash = device_events.anonymous_hash
        and device_events.user_hash is not null
        and device_events.event_ts < touched_devices.first_new_event_ts
    group by 1

),

restitch_events as (

    select
        device_events.event_id,
        device_events.user_hash,
        device_events.anonymous_hash,
        device_events.event_ts,
        device_events.event_name
    from {{ staged }} as device_events
    inner join restitch_bounds
        on device_events.anonymous_hash = restitch_bounds.anonymous_hash
    where restitch_bounds.restitch_from_ts is null
        or device_events.event_ts >= restitch_bounds.restitch_from_ts

),

candidates as (

    select event_id, event_ts, event_name, user_id, is_identified
    from ({{ uba_stitch('restitch_events', ['event_id', 'event_ts', 'event_name']) }}) as restitched

    union all

    select event_id, event_ts, event_name, user_hash as user_id, true as is_identified
    from new_events
    where anonymous_hash is null

),

changes as (

    select
        candidates.*,
        stored.user_id as stored_user_id
    from candidates
    {#- the time condition is redundant (an event's time never changes for its event_id) but
        lets DuckDB skip the stored row groups before the earliest candidate (rows in time
        order): re-stitched devices usually reach back days, not the whole history #}
    left join {{ this }} as stored
        on candidates.event_id = stored.event_id
        and candidates.event_ts = stored.event_ts
    where stored.event_id is null
        or stored.user_id <> candidates.user_id

),

affected_people as (

    select user_id, min(event_ts) as changed_from_ts
    from (
        select user_id, event_ts from changes
        union all
        select stored_user_id as user_id, event_ts from changes
        where stored_user_id is not null
    ) as touched
    group by 1

),

{#- Per person the stored row the re-cut restarts from: the latest stretch start strictly before
    the earliest change (re-cut with the rest: the events before it, their sessions and its own
    session_index stay as they are), or, when restarts_after, the latest stored event, more
    than the timeout before the change (context only: its gap and session_index). -#}
restart_points as (

    {{ uba_recut_restart_before_change(
        this, 'affected_people',
        ['user_id', 'event_ts', 'event_id', 'session_index', 'seconds_since_previous']
    ) }}

),

{#- Where each person's re-cut reads the stored events from: the restart stretch start, or the
    earliest change when the re-cut starts there (restarts_after, or no stored event before it:
    a person's first event is a stretch start). Redundant beside the condition in `kept`, but
    a time condition DuckDB applies to the scan at its smallest value, skipping the row groups
    before the earliest restart. -#}
recut_from as (

    select
        affected_people.user_id,
        coalesce(
            case when not restart_points.restarts_after then restart_points.event_ts end,
            affected_people.changed_from_ts
        ) as recut_from_ts
    from affected_people
    left join restart_points
        on affected_people.user_id = restart_points.user_id

),

kept as (

    select
        stored.user_id,
        stored.event_id,
        stored.event_ts,
        stored.event_name,
        stored.is_identified,
        cast(null as {{ dbt.type_string() }}) as previous_user_id,
        false as is_context
    from {{ this }} as stored
    inner join recut_from
        on stored.user_id = recut_from.user_id
        and stored.event_ts >= recut_from.recut_from_ts
    left join restart_points
        on stored.user_id = restart_points.user_id
    where (
            restart_points.user_id is null
            or restart_points.restarts_after
            or (stored.event_ts, stored.event_id)
                >= (restart_points.event_ts, restart_points.event_id)
        )
        and not exists (
            select 1 from changes where changes.event_id = stored.event_id
        )

),

to_sessionize as (

    select * from kept

    union all

    select
        user_id,
        event_id,
        event_ts,
        event_name,
        is_identified,
        case when stored_user_id <> user_id then stored_user_id end as previous_user_id,
        false as is_context
    from changes

    union all

    {# a returning person's latest stored event: the first gap and the session count come
       from it; it keeps its stored row #}
    select
        user_id,
        event_id,
        event_ts,
        cast(null as {{ dbt.type_string() }}) as event_name,
        cast(null as {{ dbt.type_boolean() }}) as is_identified,
        cast(null as {{ dbt.type_string() }}) as previous_user_id,
        true as is_context
    from restart_points
    where restarts_after

),

{% endif %}

sessions as (

    {{ uba_sessionize(
        'to_sessionize', partition_by=['user_id'],
        carry=['is_identified', 'previous_user_id'] + (['is_context'] if is_incremental() else []),
        session_id=dbt.hash("user_id || '|' || " ~ uba_timestamp_text('session_started_at'))
    ) }}

),

final as (

    select
        staged.event_id,
        sessions.user_id,
        sessions.session_id,
        {% if is_incremental() -%}
        cast(
            sessions.session_index + coalesce(restart_points.session_index, 1) - 1 as bigint
        ) as session_index,
        {%- else -%}
        cast(sessions.session_index as bigint) as session_index,
        {%- endif %}
        cast(
            sessions.event_number - sessions.session_first_event_number + 1 as bigint
        ) as event_index_in_session,
        staged.user_hash,
        staged.anonymous_hash,
        sessions.is_identified,
        staged.user_hash is not null as is_identified_event,
        staged.event_name,
        staged.event_ts,
        staged.received_at,
        sessions.session_started_at,
        {% if is_incremental() -%}
        {#- the restart event keeps the gap to its (untouched) previous event -#}
        coalesce(sessions.seconds_since_previous, restart_points.seconds_since_previous)
            as seconds_since_previous,
        {%- else -%}
        sessions.seconds_since_previous,
        {%- endif %}
        staged.session_hint,
        staged.revenue_usd,
        staged.currency,
        staged.page,
        staged.device,
        staged.country,
        staged.plan,
        staged.feature,
        sessions.is_stretch_start,
        sessions.stretch_started_at,
        sessions.previous_user_id,
        staged.load_id,
        {% if is_incremental() -%}
        (select batch_id from batch) as batch_id
        {%- else -%}
        cast(1 as bigint) as batch_id
        {%- endif %}
    from sessions
    {% if is_incremental() -%}
    {#- the staged columns of the events re-cut: the new events' from the new load batches of
        staging (literals: DuckDB skips the other row groups), the stored events' from their
        stored copy, read from the earliest re-cut start on (this table is in time order;
        staging, stored by load batch, was read whole to find a few thousand ids); a stored
        event that moved person is read under its stored person, who is re-cut too -#}
    inner join (
        select {{ staged_columns | join(', ') }}
        from {{ staged }}
        where {{ uba_new_loads(staged, 'select distinct load_id from ' ~ this) }}

        union all

        select
            {%- for column in staged_columns %}
            stored.{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ this }} as stored
        inner join recut_from
            on stored.user_id = recut_from.user_id
            and stored.event_ts >= recut_from.recut_from_ts
    ) as staged
    {%- else -%}
    inner join {{ staged }} as staged
    {%- endif %}
        on sessions.event_id = staged.event_id
    {% if is_incremental() -%}
    left join restart_points
        on sessions.user_id = restart_points.user_id
    where not sessions.is_context
    {%- endif %}

)

{#- A full build stores the events in time order: the daily models' literal bounds on
    event_ts then skip the row groups before them (incremental batches are appended after). #}
select * from final
{% if not is_incremental() %}order by event_ts, event_id{% endif %}
