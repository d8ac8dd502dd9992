{#- Person keys whose events or sessions may have changed since the last incremental run.
    New data = events received after (high-water mark - uba__late_event_lookback_days), where the
    high-water mark is `hwm_sql` (a scalar subquery on the target). A late or new event can
    change (a) its person's sessions and (b) the stitching of every anonymous-only event on its
    device, so the keys are: the people of new events, plus every person currently holding an
    event on a device seen in new data. Models rebuild these people whole. -#}
{% macro uba_touched_user_ids(hwm_sql, stitched_relation) -%}
    {%- set lookback_days = var('uba__late_event_lookback_days') -%}
    select user_id from {{ stitched_relation }}
    where received_at > (
        select
            coalesce(
                {{ dbt.dateadd('day', -1 * lookback_days, 'max_received_at') }},
                cast('1900-01-01' as {{ dbt.type_timestamp() }})
            )
        from ({{ hwm_sql }}) as high_water_mark
    )
    union
    select device_events.user_id
    from {{ stitched_relation }} as device_events
    where device_events.anonymous_hash in (
        select anonymous_hash from {{ stitched_relation }}
        where anonymous_hash is not null
            and received_at > (
                select
                    coalesce(
                        {{ dbt.dateadd('day', -1 * lookback_days, 'max_received_at') }},
                        cast('1900-01-01' as {{ dbt.type_timestamp() }})
                    )
                from ({{ hwm_sql }}) as high_water_mark
            )
    )
{%- endmacro %}
