{#- Per person, running totals of their events: attribute 'events' (value '') holds the events,
    exact revenue, first and last event, whether identified and the sessions (count_sessions:
    the highest session_index; sessions are numbered from 1 per person); 'device' and
    'country' hold the events per value, 'anonymous_hash' those per device id (in column
    anonymous_hash; value ''; '' there on the other rows). dim_users reads this for the day's people
    instead of every event they ever had.

    Incremental. Most of a day's rows for a changed person are re-cut rewrites of events
    counted before (same person, device, country, revenue and time), so a run adds to the
    stored totals only the rows not counted yet: those of the loads it has not consumed
    (recorded per load in uba_consumed_batches, producer int_events_sessionized@loads) and
    those that moved here from another person (previous_user_id). count_sessions is not a
    sum: it is the highest session_index among the person's rows written (the re-cut rewrites
    the person's last stretch, their newest session included). A person who lost events to
    re-stitching may lose values and their first or last event: the pre-hook deletes their
    rows and they are recounted from all their events (the only read of the history, and only
    when such people exist). With no load recorded (a first run) or a re-read of the producer,
    everything is recounted. -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{%- set consumed_loads = "{{ uba_consumed_loads(ref('int_events_sessionized'), 'loads') }}" -%}
{%- set model_config = uba_events_consumer_config('rows',
    where="user_id in (" ~ "{{ feature_people_who_lost_events(ref('int_events_sessionized')) }})"
        ~ " or not exists (" ~ consumed_loads ~ ")",
    unique_key=['user_id', 'attribute', 'value', 'anonymous_hash']) -%}
{#- After the batch is recorded: the loads of the rows read this run that are not recorded. -#}
{%- do model_config.post_hook.append(
    "{{ uba_record_loads_read(ref('int_events_sessionized'), 'loads') }}") -%}
{{ config(**model_config) }}
{%- set columns = 'user_id, is_identified, event_ts, session_index, anonymous_hash, device, country, revenue_usd' -%}

{%- set recount = not is_incremental() -%}
{%- if is_incremental() and execute -%}
{%- set loads_recorded = uba_cached_query_value('value_counts_loads_recorded',
    'select count(*) from (' ~ uba_consumed_loads(sessionized, 'loads') ~ ') as recorded') -%}
{%- set recount = loads_recorded == 0 or uba_reads_everything(sessionized) | trim == 'true' -%}
{%- endif %}

with

{% if not recount -%}
changed as (

    {{ uba_changed_rows(sessionized, columns ~ ', load_id, previous_user_id') }}

),

lost as (

    {{ feature_people_who_lost_events(sessionized) }}

),

{#- Counted once here: when nobody lost events (most days) the history is not read at all. -#}
{%- set lost_count = uba_cached_query_value('value_counts_lost',
    'select count(*) from (' ~ feature_people_who_lost_events(sessionized) ~ ') as lost') %}
{%- set new_loads = uba_new_loads(
    '(' ~ uba_changed_rows(sessionized, 'load_id') ~ ') as written',
    uba_consumed_loads(sessionized, 'loads')) %}
{#- The rows not counted yet: new loads and rows moved in, plus everything of a person who
    lost events (their stored rows are gone). -#}
counted as (

    select {{ columns }}
    from changed
    where user_id is not null
        and user_id not in (select user_id from lost)
        and ({{ new_loads }} or previous_user_id is not null)
    {%- if lost_count is none or lost_count > 0 %}
    union all
    select {{ columns }}
    from {{ sessionized }}
    where user_id in (select user_id from lost)
    {%- endif %}

),

{#- Every person with rows written (each has their newest session among them). -#}
sessions as (

    select user_id, max(session_index) as count_sessions
    from changed
    where user_id is not null
        and user_id not in (select user_id from lost)
    group by 1
    {%- if lost_count is none or lost_count > 0 %}
    union all
    select user_id, max(session_index) as count_sessions
    from {{ sessionized }}
    where user_id in (select user_id from lost)
    group by 1
    {%- endif %}

),

{%- else %}
{#- Inlined where it is read (five times): DuckDB materialized it, a copy of every event's
    eight columns, and read that back five times (10M events: 11.7-13.3 s, inlined 3.1 s). -#}
counted as {{ uba_cte_not_materialized() }} (

    select {{ columns }}
    from {{ sessionized }}
    where user_id is not null

),

sessions as (

    select user_id, max(session_index) as count_sessions
    from counted
    group by 1

),

{%- endif %}

{%- set totals -%}
        count(*) as count_events,
        {{ uba_exact_decimal_sum('revenue_usd') }} as revenue_usd,
        min(event_ts) as first_event_at,
        max(event_ts) as last_event_at,
        {{ dbt.bool_or('is_identified') }} as is_identified
{%- endset %}
person_totals as (

    select user_id, {{ totals }}
    from counted
    group by 1

),

found as (

    select
        sessions.user_id,
        cast('events' as {{ dbt.type_string() }}) as attribute,
        cast('' as {{ dbt.type_string() }}) as value,
        cast('' as {{ dbt.type_string() }}) as anonymous_hash,
        coalesce(person_totals.count_events, 0) as count_events,
        person_totals.revenue_usd,
        person_totals.first_event_at,
        person_totals.last_event_at,
        coalesce(person_totals.is_identified, false) as is_identified,
        sessions.count_sessions
    from sessions
    left join person_totals
        on sessions.user_id = person_totals.user_id
    {#- the device id in a column named for it (privacy: erasure finds identifiers by name) #}
    {%- for attribute, value, anonymous_hash in [
        ('device', 'device', "''"), ('country', 'country', "''"),
        ('anonymous_hash', "''", 'anonymous_hash')] %}
    union all
    select
        user_id,
        cast('{{ attribute }}' as {{ dbt.type_string() }}) as attribute,
        cast({{ value }} as {{ dbt.type_string() }}) as value,
        cast({{ anonymous_hash }} as {{ dbt.type_string() }}) as anonymous_hash,
        {{ totals }},
        cast(null as bigint) as count_sessions
    from counted
    where {{ attribute }} is not null
    group by 1, 2, 3, 4
    {%- endfor %}

)

{% if not recount -%}
{#- Added to the stored totals (a sum over no rows is null, as in a sum over all of them). -#}
select
    found.user_id,
    found.attribute,
    found.value,
    found.anonymous_hash,
    cast(found.count_events + coalesce(stored.count_events, 0) as bigint) as count_events,
    case
        when stored.revenue_usd is null then found.revenue_usd
        when found.revenue_usd is null then stored.revenue_usd
        else found.revenue_usd + stored.revenue_usd
    end as revenue_usd,
    case
        when stored.first_event_at < found.first_event_at or found.first_event_at is null
            then stored.first_event_at
        else found.first_event_at
    end as first_event_at,
    case
        when stored.last_event_at > found.last_event_at or found.last_event_at is null
            then stored.last_event_at
        else found.last_event_at
    end as last_event_at,
    found.is_identified or coalesce(stored.is_identified, false) as is_identified,
    cast(found.count_sessions as bigint) as count_sessions
from found
left join {{ this }} as stored
    on found.user_id = stored.user_id
    and found.attribute = stored.attribute
    and found.value = stored.value
    and found.anonymous_hash = stored.anonymous_hash
{%- else -%}
select
    user_id,
    attribute,
    value,
    anonymous_hash,
    cast(count_events as bigint) as count_events,
    revenue_usd,
    first_event_at,
    last_event_at,
    is_identified,
    cast(count_sessions as bigint) as count_sessions
from found
{%- endif %}
