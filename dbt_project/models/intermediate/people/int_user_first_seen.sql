{#- Per person, the first day each country and each device was seen, and the first active day
    (attribute 'active', value ''): the running state ftr_user_day_activity reads for "seen
    before", so a day recomputes its people without reading their whole history.

    Incremental. A first day only moves earlier while a person's events only grow: events are
    written once (the gate and staging keep one row per event_id), a re-cut rewrites a
    person's recent events with the same day, country and device, and a re-stitched event
    is written again under its new person. So for each (person, attribute, value) among the
    rows written since this model last ran, the first day is the earlier of the stored one
    and the rows' own (delete+insert on the key); the others keep their rows. A person who
    lost events to re-stitching (previous_user_id of a written row) may lose a value or a
    first day: the pre-hook deletes their rows and they are recomputed from all their events
    (the only read of the history, and only when such people exist). -#}
{%- set sessionized = ref('int_events_sessionized') -%}
{{ config(**uba_events_consumer_config('rows',
    where="user_id in (" ~ "{{ feature_people_who_lost_events(ref('int_events_sessionized')) }})",
    unique_key=['user_id', 'attribute', 'value'])) }}

with

{% if is_incremental() -%}
changed as (

    {{ uba_changed_rows(sessionized, 'user_id, country, device, event_ts') }}

),

lost as (

    {{ feature_people_who_lost_events(sessionized) }}

),

{#- Counted once here: when nobody lost events (most days) the history is not read at all. -#}
{%- set lost_count = uba_cached_query_value('first_seen_lost',
    'select count(*) from (' ~ feature_people_who_lost_events(sessionized) ~ ') as lost') %}
events as (

    select user_id, country, device, event_ts
    from changed
    where user_id is not null
        and user_id not in (select user_id from lost)
    {%- if lost_count is none or lost_count > 0 %}
    union all
    select user_id, country, device, event_ts
    from {{ sessionized }}
    where user_id in (select user_id from lost)
    {%- endif %}

),

{%- else %}
events as (

    select user_id, country, device, event_ts
    from {{ sessionized }}
    where user_id is not null

),

{%- endif %}

{#- One row per (person, country, device) first: a person's events hold a few of them. -#}
pairs as (

    select user_id, country, device, min(cast(event_ts as date)) as first_date
    from events
    group by 1, 2, 3

),

found as (

    select
        user_id,
        cast('active' as {{ dbt.type_string() }}) as attribute,
        cast('' as {{ dbt.type_string() }}) as value,
        min(first_date) as first_date
    from pairs
    group by 1
    {%- for attribute in ['country', 'device'] %}
    union all
    select
        user_id,
        cast('{{ attribute }}' as {{ dbt.type_string() }}) as attribute,
        {{ attribute }} as value,
        min(first_date) as first_date
    from pairs
    where {{ attribute }} is not null
    group by 1, 2, 3
    {%- endfor %}

)

{% if is_incremental() -%}
select
    found.user_id,
    found.attribute,
    found.value,
    case
        when stored.first_date < found.first_date then stored.first_date
        else found.first_date
    end as first_date
from found
left join {{ this }} as stored
    on found.user_id = stored.user_id
    and found.attribute = stored.attribute
    and found.value = stored.value
{%- else -%}
select user_id, attribute, value, first_date from found
{%- endif %}
