{#- One row per event with its stitched person and its session: the only per-event table
    between staging and the marts. Stitching (macro uba_stitch) and sessions (macro
    uba_sessionize) run over narrow rows in one query; the wide staged columns join back once.

    Incremental (delete+insert on event_id), a run costs what changed:
    1. new events = the load batches staging has and this table has not (load_id, written in as
       literals: macro uba_new_loads);
    2. a device whose new events cannot move a stored event (one user before and after, or
       new events after its last identified event naming no other user) gives them its user
       from its summary (int_identity_stitched); stitching is recomputed on the other devices
       of the new events, from the last identified event before the earliest new one
       (anonymous events before it keep their neighbours);
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
        pre_hook=["{{ uba_write_time_sliced_narrow() }}"],
        post_hook=[
            "{{ uba_write_later_parts() }}",
            "{{ uba_forget_consumers_on_full_refresh() }}",
        ],
        meta={'uba_replaced_from': 'event_ts'},
    )
}}
{#- The staged events are read by relation name, not through a `select *` CTE: DuckDB may
    materialize a CTE that is read more than once, a full copy of the wide table. -#}
{%- set staged = ref('stg_app__events') -%}
{#- The devices' state before this run: int_identity_stitched when it is current (it reads this
    table, so it is named, not a ref). -#}
{%- set stitched_state = uba_current_consumer('int_identity_stitched', this)
    if is_incremental() else none -%}
{#- The staged columns this table copies (an incremental run reads a stored event's copy). -#}
{%- set staged_columns = [
    'event_id', 'user_hash', 'anonymous_hash', 'event_name', 'event_ts', 'received_at',
    'session_hint', 'revenue_usd', 'currency', 'page', 'device', 'country', 'plan', 'feature',
    'load_id'] -%}

{#- The CTEs both builds share: sessions over `to_sessionize`, and the final columns. -#}
{%- set sessions_cte -%}
sessions as (

    {{ uba_sessionize(
        'to_sessionize', partition_by=['user_id'],
        carry=['is_identified', 'previous_user_id'] + (['is_context'] if is_incremental() else []),
        session_id=dbt.hash("user_id || '|' || " ~ uba_timestamp_text('session_started_at'))
    ) }}

)
{%- endset -%}

{%- set final_cte -%}
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
        {#- stored, not derived by fct_events (a view): a filter on a stored column skips the
            row groups before it, one on an expression reads them all -#}
        cast(staged.event_ts as date) as event_date,
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

        select {{ staged_columns | join(', ') }}
        from recut_stored
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
{%- endset -%}

{% if not is_incremental() %}

{#- A full build stores the events in time order: the daily models' literal bounds on
    event_ts then skip the row groups before them (incremental batches are appended after).
    On DuckDB, past the events of a range (var uba__full_build_range_rows_per_gib per GiB of
    its pool) it is written by ranges of event time, the narrow sessions first
    (macros/uba_time_slices.sql): the join back to the staged columns and the sort then hold
    one range at a time. The narrow sessions are written in parts of people when their
    windows outgrow the pool (var uba__full_build_session_rows_per_gib): each part stitches
    every event (a device's windows span people) and sessionizes its own people's. -#}
{%- set slices = uba_time_slices(staged, 'event_ts') -%}
{%- set people = 1 if slices | length == 1
    else uba_person_parts(staged, 'uba__full_build_session_rows_per_gib') -%}
{%- set narrow_parts = [] -%}
{%- for part in range(people) -%}
{%- set narrow_ctes -%}
to_sessionize as (

    select
        user_id,
        event_id,
        event_ts,
        event_name,
        is_identified,
        cast(null as {{ dbt.type_string() }}) as previous_user_id
    from ({{ uba_stitch(staged, ['event_id', 'event_ts', 'event_name']) }}) as stitched
    {%- if people > 1 %}
    where {{ uba_person_part_filter('user_id', part, people) }}
    {%- endif %}

),

{{ sessions_cte }}
{%- endset -%}
{%- do narrow_parts.append(narrow_ctes) -%}
{%- endfor -%}

{{ uba_time_sliced_select(
    narrow_parts, 'sessions', final_cte, 'final', 'event_ts', 'event_ts, event_id', slices
) }}

{% else %}

with

batch as (

    select coalesce(max(batch_id), 0) + 1 as batch_id from {{ this }}

),

new_events as (

    select event_id, user_hash, anonymous_hash, event_ts, event_name
    from {{ staged }}
    where {{ uba_new_loads(staged, 'select distinct load_id from ' ~ this) }}

),

{#- The devices of the new events, with what their new events say about identity. -#}
touched_devices as (

    select
        anonymous_hash,
        min(event_ts) as first_new_event_ts,
        count(distinct user_hash) as count_new_users,
        min(user_hash) as min_new_user_hash,
        max(user_hash) as max_new_user_hash
    from new_events
    where anonymous_hash is not null
    group by 1

),

{#- The touched devices' stored summary (int_identity_stitched's columns, macro
    uba_device_summary): that table when it has consumed every batch of this one, else the same
    aggregate over this table's rows (every stored event of the devices: a whole scan). -#}
device_state as (

    {%- if stitched_state is not none %}
    select anonymous_hash, user_hash, count_identified_users, first_seen_at, last_identified_at
    from {{ stitched_state }}
    where anonymous_hash in (select anonymous_hash from touched_devices)
    {%- else %}
    {{ uba_device_summary(
        '(select anonymous_hash, user_hash, event_ts, event_id from ' ~ this
        ~ ' where anonymous_hash in (select anonymous_hash from touched_devices)) as stored') }}
    {%- endif %}

),

{#- A device is settled when its new events change no stored event's person (macro uba_stitch's
    rule): it has at most one identified user before and after them (each event goes to that
    user, or stays the device), or its new events all come after its last identified event and
    name no other user (each anonymous event's nearest identified neighbours are then that
    user's events). A settled device's new events take its user (device_user_hash) without
    reading its stored events; the others are re-stitched. -#}
devices as (

    select
        touched_devices.anonymous_hash,
        touched_devices.first_new_event_ts,
        device_state.user_hash as device_user_hash,
        device_state.first_seen_at,
        device_state.last_identified_at,
        coalesce(
            (
                touched_devices.count_new_users = 0
                or (
                    touched_devices.min_new_user_hash = device_state.user_hash
                    and touched_devices.max_new_user_hash = device_state.user_hash
                )
            ) and (
                coalesce(device_state.count_identified_users, 0) <= 1
                or device_state.last_identified_at < touched_devices.first_new_event_ts
            ),
            false
        ) as is_settled
    from touched_devices
    left join device_state
        on touched_devices.anonymous_hash = device_state.anonymous_hash

),

{#- Stitching of an unsettled device changes only after the last identified event that precedes
    its new events: the summary's last identified event when the new events come after it;
    for new events before it (late arrivals) the latest one before them, looked for among the
    week of stored events before them (a join time condition DuckDB applies to the scan), else
    the device is re-stitched from its first event, as it is when it was never identified. -#}
late_restitch_starts as (

    select
        devices.anonymous_hash,
        max(stored.event_ts) as restitch_from_ts
    from devices
    inner join {{ this }} as stored
        on devices.anonymous_hash = stored.anonymous_hash
        and stored.user_hash is not null
        and stored.event_ts < devices.first_new_event_ts
        and stored.event_ts >= {{ dbt.dateadd('day', -7, 'devices.first_new_event_ts') }}
    where not devices.is_settled
        and devices.last_identified_at >= devices.first_new_event_ts
    group by 1

),

restitch_bounds as (

    select
        devices.anonymous_hash,
        case
            when devices.last_identified_at < devices.first_new_event_ts
                then devices.last_identified_at
            else coalesce(late_restitch_starts.restitch_from_ts, devices.first_seen_at)
        end as restitch_from_ts
    from devices
    left join late_restitch_starts
        on devices.anonymous_hash = late_restitch_starts.anonymous_hash
    where not devices.is_settled

),

{#- An unsettled device's stored events from its re-stitch start (none for a device without
    stored events: its start is null) and its new events. -#}
restitch_events as (

    select
        stored.event_id,
        stored.user_hash,
        stored.anonymous_hash,
        stored.event_ts,
        stored.event_name,
        stored.user_id as stored_user_id
    from {{ this }} as stored
    inner join restitch_bounds
        on stored.anonymous_hash = restitch_bounds.anonymous_hash
        and stored.event_ts >= restitch_bounds.restitch_from_ts

    union all

    select
        new_events.event_id,
        new_events.user_hash,
        new_events.anonymous_hash,
        new_events.event_ts,
        new_events.event_name,
        cast(null as {{ dbt.type_string() }}) as stored_user_id
    from new_events
    inner join restitch_bounds
        on new_events.anonymous_hash = restitch_bounds.anonymous_hash

),

{#- Every new event and re-stitched stored event with its person, and the person it is stored
    under (stored_user_id; null for a new event: its load batch is new, and the gate
    quarantines an event_id it accepted before). Carried from the rows read, not looked up by
    event_id: DuckDB built that join's hash table on every stored event (9.7M rows at 10M
    events, 2 s of a day). -#}
candidates as (

    select event_id, event_ts, event_name, stored_user_id, user_id, is_identified
    from ({{ uba_stitch(
        'restitch_events', ['event_id', 'event_ts', 'event_name', 'stored_user_id']) }}
    ) as restitched

    union all

    select
        new_events.event_id,
        new_events.event_ts,
        new_events.event_name,
        cast(null as {{ dbt.type_string() }}) as stored_user_id,
        coalesce(new_events.user_hash, devices.device_user_hash, new_events.anonymous_hash)
            as user_id,
        coalesce(new_events.user_hash, devices.device_user_hash) is not null as is_identified
    from new_events
    inner join devices
        on new_events.anonymous_hash = devices.anonymous_hash
    where devices.is_settled

    union all

    select
        event_id,
        event_ts,
        event_name,
        cast(null as {{ dbt.type_string() }}) as stored_user_id,
        user_hash as user_id,
        true as is_identified
    from new_events
    where anonymous_hash is null

),

changes as (

    select *
    from candidates
    where stored_user_id is null
        or stored_user_id <> user_id

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
    a time condition DuckDB applies to the scan in recut_stored at its smallest value, skipping
    the row groups before the earliest restart. -#}
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

{#- The stored events the re-cuts read, with the staged columns `final` copies: read once, in a
    join of its own (inside `kept`, beside its other joins, DuckDB hashed every stored event
    and probed them with the few thousand people: 2.5 s of a day at 10M events, and no
    row group skipped). -#}
recut_stored as (

    select
        stored.user_id,
        stored.is_identified,
        {%- for column in staged_columns %}
        stored.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ this }} as stored
    inner join recut_from
        on stored.user_id = recut_from.user_id
        and stored.event_ts >= recut_from.recut_from_ts

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
    from recut_stored as stored
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

{{ sessions_cte }},

{{ final_cte }}

select * from final

{% endif %}
