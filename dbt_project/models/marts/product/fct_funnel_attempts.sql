{#- Funnel attempts for every funnel in var uba__funnels, at user and session level (logic and
    the attempt rule: macro funnel_attempts in macros/funnels.sql).

    Incremental: an attempt depends only on its person's events from its step 1 to its end,
    so a run replays only the people whose events changed since this model last ran (macros
    in uba_batches.sql), from their earliest change minus the longest conversion window
    (replay_from; an attempt that ends at or after the change starts after it). The pre-hook
    deletes their attempts starting from replay_from on; per funnel, level and user (session)
    the kept attempts end at resume_after, and the next attempt is the first step-1 event
    after it, so the replay starts there and numbers on. Attempts still open are replayed
    with their person's next events; nothing depends on the rest of the data. A full build
    is stored in started_at order (daily rows are appended after), so the pre-hook and the
    replayed events skip the row groups before the earliest replay_from
    (funnel_and_replayed_from). -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{%- set replay_from = funnel_replay_from('changed.changed_from_ts') -%}
{%- set model_config = uba_events_consumer_config(
    'people_since', since="{{ this }}.started_at >= " ~ replay_from,
    stale_from="{{ funnel_and_replayed_from(this ~ '.started_at') }}") -%}
{%- do model_config.pre_hook.append("{{ uba_no_nested_loops() }}") -%}
{%- do model_config.post_hook.insert(0, '{{ uba_write_later_parts() }}') -%}
{{ config(**model_config) }}

{%- if is_incremental() -%}
{%- set ctes -%}
changed_people as (

    select changed.user_id, {{ replay_from }} as replay_from
    from ({{ uba_changed_people(sessionized) }}) as changed

),

kept_attempts as (

    select
        funnel_name,
        funnel_level,
        case when funnel_level = 'user' then user_id else session_id end as partition_id,
        max(coalesce(converted_at, window_ends_at)) as resume_after,
        count(*) as kept_attempts
    from {{ this }}
    where user_id in (select user_id from changed_people)
    group by 1, 2, 3

),

changed_events as (

    select events.*
    from {{ ref('fct_events') }} as events
    inner join changed_people
        on events.user_id = changed_people.user_id
    where events.event_ts >= changed_people.replay_from
        {{- funnel_and_replayed_from('events.event_ts') }}

)
{%- endset -%}
{{ funnel_attempts(
    'changed_events', ctes=ctes, resume={'people': 'changed_people', 'kept': 'kept_attempts'}) }}
{%- else -%}
{#- A full build on DuckDB is written in parts of people when the events outgrow the pool
    (macros/uba_time_slices.sql, var uba__full_build_event_rows_per_gib): at 10M events in a
    1.5 GB pool one statement spilled 3.1 GiB and took 32.5 s, 3 parts 0.3 GiB and 22.3 s. An
    attempt is one person's (user or session level), so each part reads its people's events;
    every other build is one part. -#}
{%- set events = ref('fct_events') -%}
{%- set parts = uba_person_parts(events, 'uba__full_build_event_rows_per_gib') -%}
{%- set statements = [] -%}
{%- for part in range(parts) -%}
{%- set part_events = events if parts == 1 else '(select * from ' ~ events ~ ' where '
    ~ uba_person_part_filter('user_id', part, parts) ~ ') as part_events' -%}
{%- set statement -%}
{{ funnel_attempts(part_events) }}
order by started_at
{%- endset -%}
{%- do statements.append(statement) -%}
{%- endfor -%}
{{ uba_written_in_person_parts(statements) }}
{%- endif %}
