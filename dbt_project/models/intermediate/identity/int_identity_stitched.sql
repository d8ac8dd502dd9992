{#- Device-level summary of the stitching. user_hash is the last-seen identified user on the
    device (GA4's user_id mapping rule: the identified user of the latest identified event by
    (event_ts, event_id)); per-event assignment on shared devices is in int_events_sessionized.
    Aggregates only (no window over the events; macro uba_device_summary, which
    int_events_sessionized also reads as the devices' state before a run).

    Incremental. A device's summary depends on its staged columns alone (user_hash, event_ts,
    event_id), which a re-cut or re-stitch never changes: only new events change it. The new
    events are the rows of int_events_sessionized's load batches this model has not counted
    (recorded per load by the post-hook, as load_id literals: macro uba_new_loads), and each
    device's stored summary absorbs them (counts added, times compared), except where the
    stored row cannot say the result: a device seen with two or more users gaining a user other
    than its last one (is that user among them?), or a new identified event at the same time as
    the last stored one (which comes last is by event_id). Those devices, and every device with
    rows written since this model last ran when the loads counted are not recorded (a first run
    of this version) or this model lags the producer, are recomputed whole from the events. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{
    config(
        materialized=uba_incremental_unless_spark(),
        unique_key='anonymous_hash',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=[
            "{{ uba_record_consumed_batch(ref('int_events_sessionized')) }}",
            "{{ uba_record_consumed_loads(ref('int_events_sessionized'), 'devices') }}",
        ],
    )
}}
{%- set merges = false -%}
{%- if is_incremental() and execute -%}
    {%- set loads_counted = run_query('select count(*) from ('
        ~ uba_consumed_loads(sessionized, 'devices') ~ ') as counted').rows[0][0] | int -%}
    {%- set merges = loads_counted > 0
        and uba_reads_everything(sessionized) | trim == 'false' -%}
{%- endif %}

with

{% if merges %}

new_events as (

    select anonymous_hash, user_hash, event_ts, event_id
    from {{ sessionized }}
    where {{ uba_new_loads(sessionized, uba_consumed_loads(sessionized, 'devices')) }}
        and anonymous_hash is not null

),

stored as (

    select *
    from {{ this }}
    where anonymous_hash in (select anonymous_hash from new_events)

),

new_summary as (

    select
        new_events.anonymous_hash,
        {{ uba_last_by('new_events.user_hash', ['new_events.event_ts', 'new_events.event_id']) }}
            as user_hash,
        count(distinct new_events.user_hash) as count_identified_users,
        count(distinct case
            when stored.user_hash is null or new_events.user_hash <> stored.user_hash
                then new_events.user_hash
        end) as count_users_not_last,
        count(*) as count_events,
        min(new_events.event_ts) as first_seen_at,
        max(new_events.event_ts) as last_seen_at,
        max(case when new_events.user_hash is not null then new_events.event_ts end)
            as last_identified_at
    from new_events
    left join stored
        on new_events.anonymous_hash = stored.anonymous_hash
    group by 1

),

{#- A stored device with at most one user knows its user set; a device gaining no user other
    than its last one keeps its count. -#}
mergeable as (

    select
        new_summary.*,
        stored.anonymous_hash is null
            or (
                (stored.count_identified_users <= 1 or new_summary.count_users_not_last = 0)
                and (
                    new_summary.last_identified_at is null
                    or stored.last_identified_at is null
                    or new_summary.last_identified_at <> stored.last_identified_at
                )
            ) as is_mergeable
    from new_summary
    left join stored
        on new_summary.anonymous_hash = stored.anonymous_hash

),

merged as (

    select
        mergeable.anonymous_hash,
        case
            when stored.last_identified_at is null
                or mergeable.last_identified_at > stored.last_identified_at
                then coalesce(mergeable.user_hash, stored.user_hash)
            else stored.user_hash
        end as user_hash,
        coalesce(stored.count_identified_users, 0) + mergeable.count_users_not_last
            as count_identified_users,
        coalesce(stored.count_events, 0) + mergeable.count_events as count_events,
        case
            when stored.first_seen_at < mergeable.first_seen_at then stored.first_seen_at
            else mergeable.first_seen_at
        end as first_seen_at,
        case
            when stored.last_seen_at > mergeable.last_seen_at then stored.last_seen_at
            else mergeable.last_seen_at
        end as last_seen_at,
        case
            when mergeable.last_identified_at is null
                or stored.last_identified_at > mergeable.last_identified_at
                then stored.last_identified_at
            else mergeable.last_identified_at
        end as last_identified_at
    from mergeable
    left join stored
        on mergeable.anonymous_hash = stored.anonymous_hash
    where mergeable.is_mergeable

),

recomputed_events as (

    select anonymous_hash, user_hash, event_ts, event_id
    from {{ sessionized }}
    where anonymous_hash in (
        select anonymous_hash from mergeable where not is_mergeable
    )

),

final as (

    select
        anonymous_hash,
        user_hash,
        count_identified_users > 1 as is_shared_device,
        count_identified_users,
        count_events,
        first_seen_at,
        last_seen_at,
        last_identified_at
    from merged

    union all

    {{ uba_device_summary('recomputed_events') }}

)

{% else %}

events as (

    select anonymous_hash, user_hash, event_ts, event_id
    from {{ sessionized }}
    where anonymous_hash is not null
    {%- if is_incremental() %}
        and anonymous_hash in (
            select anonymous_hash from ({{ uba_changed_rows(sessionized) }}) as changed
        )
    {%- endif %}

),

final as (

    {{ uba_device_summary('events') }}

)

{% endif %}

select * from final
