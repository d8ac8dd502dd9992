{#- Identity stitching, written once (int_events_sessionized calls it on every event in a full
    build and on the events of the devices new data touched in an incremental one).

    Rule: an identified event keeps its user_hash. An anonymous-only event goes to the user
    identified on the same device (anonymous_hash) at the nearest LATER event, else at the
    nearest earlier one, ordered by (event_ts, event_id); a device never identified keeps its
    anonymous_hash as the person key. Two user_hashes are never merged.

    `relation` holds event_id, user_hash, anonymous_hash, event_ts and the `columns` passed
    through. Returns one row per event: `columns`, user_hash, anonymous_hash, user_id (the
    person key) and is_identified (the key is a user_hash). On devices seen with two or more
    users the neighbours come from window functions that carry the (narrow) columns along;
    other devices join their one user (a per-device aggregate), with no ordered pass. -#}
{% macro uba_stitch(relation, columns) -%}
    {%- set carried = columns | join(', ') -%}
    {#- Most devices are identified as one user or never (at 1M events: 8,506 and 454 of 9,024
        devices; the other 64 hold 1.5% of the events). On those the rule gives that one user
        (or the device) to every event without ordering anything, so only the devices seen
        with two or more users take the ordered neighbour windows. -#}
    with

    device_users as (

        select
            anonymous_hash,
            count(distinct user_hash) as user_count,
            min(user_hash) as only_user_hash
        from {{ relation }}
        where anonymous_hash is not null
        group by anonymous_hash

    )

    select
        {{ carried }},
        user_hash,
        anonymous_hash,
        coalesce(user_hash, next_user_hash, previous_user_hash, anonymous_hash) as user_id,
        coalesce(user_hash, next_user_hash, previous_user_hash) is not null as is_identified
    from (
        {{ uba_device_neighbour_users(
            '(select * from ' ~ relation ~ ' where anonymous_hash in ('
            ~ 'select anonymous_hash from device_users where user_count > 1)) as shared_devices',
            columns) }}
    ) as on_shared_devices
    union all
    select
        {%- for column in columns %}
        single_device_events.{{ column }},
        {%- endfor %}
        single_device_events.user_hash,
        single_device_events.anonymous_hash,
        coalesce(
            single_device_events.user_hash, device_users.only_user_hash,
            single_device_events.anonymous_hash
        ) as user_id,
        coalesce(single_device_events.user_hash, device_users.only_user_hash) is not null
            as is_identified
    from {{ relation }} as single_device_events
    inner join device_users
        on single_device_events.anonymous_hash = device_users.anonymous_hash
    where device_users.user_count <= 1
    {#- An event without a device carries a user_hash (the gate requires one of the two). #}
    union all
    select
        {{ carried }},
        user_hash,
        anonymous_hash,
        user_hash as user_id,
        true as is_identified
    from {{ relation }}
    where anonymous_hash is null
{%- endmacro %}

{#- For every event with an anonymous_hash in `relation`: the user_hash of the nearest
    identified event on the same device at or before it (previous_user_hash) and at or after
    it (next_user_hash), ordered by (event_ts, event_id). Returns `columns`, user_hash,
    anonymous_hash, previous_user_hash, next_user_hash. -#}
{% macro uba_device_neighbour_users(relation, columns=['event_id']) -%}
    {{ return(adapter.dispatch('uba_device_neighbour_users', 'uba')(relation, columns)) }}
{%- endmacro %}

{#- DuckDB (and other engines with IGNORE NULLS): both frames share one sort. -#}
{% macro default__uba_device_neighbour_users(relation, columns) -%}
    select
        {{ columns | join(', ') }},
        user_hash,
        anonymous_hash,
        last_value(user_hash ignore nulls) over (
            partition by anonymous_hash
            order by event_ts, event_id
            rows between unbounded preceding and current row
        ) as previous_user_hash,
        first_value(user_hash ignore nulls) over (
            partition by anonymous_hash
            order by event_ts, event_id
            rows between current row and unbounded following
        ) as next_user_hash
    from {{ relation }}
    where anonymous_hash is not null
{%- endmacro %}

{#- PostgreSQL has no IGNORE NULLS: running counts of identified events mark stretches that
    each start with exactly one identified event, so max(user_hash) over a stretch is it. -#}
{% macro postgres__uba_device_neighbour_users(relation, columns) -%}
    select
        {{ columns | join(', ') }},
        user_hash,
        anonymous_hash,
        case when identified_before > 0 then max(user_hash) over (
            partition by anonymous_hash, identified_before
        ) end as previous_user_hash,
        case when identified_after > 0 then max(user_hash) over (
            partition by anonymous_hash, identified_after
        ) end as next_user_hash
    from (
        select
            {{ columns | join(', ') }},
            anonymous_hash,
            user_hash,
            count(user_hash) over (
                partition by anonymous_hash
                order by event_ts, event_id
                rows between unbounded preceding and current row
            ) as identified_before,
            count(user_hash) over (
                partition by anonymous_hash
                order by event_ts desc, event_id desc
                rows between unbounded preceding and current row
            ) as identified_after
        from {{ relation }}
        where anonymous_hash is not null
    ) as device_positions
{%- endmacro %}

{#- One row per device of `events` (anonymous_hash, user_hash, event_ts, event_id; rows without
    a device left out by the caller): the columns of int_identity_stitched, written once. The
    re-stitch of an incremental int_events_sessionized reads them (stored, or computed from its
    own rows when the stored table lags) to tell which devices new events can change. -#}
{% macro uba_device_summary(events) -%}
    select
        anonymous_hash,
        {{ uba_last_by('user_hash', ['event_ts', 'event_id']) }} as user_hash,
        count(distinct user_hash) > 1 as is_shared_device,
        count(distinct user_hash) as count_identified_users,
        count(*) as count_events,
        min(event_ts) as first_seen_at,
        max(event_ts) as last_seen_at,
        max(case when user_hash is not null then event_ts end) as last_identified_at
    from {{ events }}
    group by 1
{%- endmacro %}
