{#- For every event with an anonymous_hash in `relation`: the user_hash of the nearest
    identified event on the same device at or before it (previous_user_hash) and at or after
    it (next_user_hash), ordered by (event_ts, event_id). Returns a select of
    (event_id, previous_user_hash, next_user_hash). -#}
{% macro uba_device_neighbour_users(relation) -%}
    {{ return(adapter.dispatch('uba_device_neighbour_users', 'uba')(relation)) }}
{%- endmacro %}

{#- DuckDB (and other engines with IGNORE NULLS): both frames share one sort. -#}
{% macro default__uba_device_neighbour_users(relation) -%}
    select
        event_id,
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
{% macro postgres__uba_device_neighbour_users(relation) -%}
    select
        event_id,
        case when identified_before > 0 then max(user_hash) over (
            partition by anonymous_hash, identified_before
        ) end as previous_user_hash,
        case when identified_after > 0 then max(user_hash) over (
            partition by anonymous_hash, identified_after
        ) end as next_user_hash
    from (
        select
            event_id,
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
