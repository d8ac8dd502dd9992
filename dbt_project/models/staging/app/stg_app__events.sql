{#- One row per event_id. The gate already drops repeated event_ids; the dedupe here is a
    safety net so a gate change cannot silently double-count. Raw ids are replaced by salted
    hashes (the tracker's session id too) and ip/email are never selected, so no raw PII goes
    past this model.

    Incremental (append) by load batch: the gate appends each load batch (load_id) to
    raw.events_validated once, whole, so a run stages the batches not staged yet. Finding them
    reads one bigint column on each side (an anti-join on event_id read every key: seconds at
    10M events), and their ids are written in as literals (macro uba_new_loads), so the four
    reads below skip the source's older row groups. A new salt or a new column needs
    `--full-refresh`. -#}
-- depends_on: {{ ref('stg_app__pseudonym_salts') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

{#- The rows to stage, written into each use rather than as a CTE: DuckDB materializes a CTE
    read more than once, a full copy of the wide source rows (properties JSON included) that
    cost about 40% of this query's CPU at 1M events and spilled under the memory limit at 10M.
    Each read below scans only the columns it needs. -#}
{%- set source_rows = source('app', 'events_validated') -%}
{%- if is_incremental() -%}
    {#- Not a watermark on load_id or loaded_at: a batch the gate blocked and later released
        lands after newer ones. -#}
    {%- set validated = '(select * from ' ~ source_rows ~ ' where '
        ~ uba_new_loads(source_rows, 'select distinct load_id from ' ~ this) ~ ')' -%}
{%- else -%}
    {%- set validated = source_rows -%}
{%- endif %}

with

{# Grouped by a digest of the id where the engine has one (DuckDB: a 64-bit hash, a third
    cheaper than grouping 36-character texts). A digest shared by two ids (a collision) only
    adds rows to the ranking below, which is by the id itself, so the copies dropped are the
    same. -#}
duplicated_event_ids as (

    select {{ uba_key_digest('event_id') }} as event_key
    from {{ validated }} as validated
    group by 1
    having count(*) > 1

),

{#- Only the (rare) repeated event_ids are ranked: a window over every row would sort the
    whole table on each read of this view. -#}
later_copies as (

    select raw_id
    from (
        select
            raw_id,
            row_number() over (
                partition by event_id
                order by received_at, raw_id
            ) as copy_rank
        from {{ validated }} as validated
        where {{ uba_key_digest('event_id') }} in (select event_key from duplicated_event_ids)
    ) as ranked_copies
    where copy_rank > 1

),

deduplicated as (

    select validated.*
    from {{ validated }} as validated
    left join later_copies
        on validated.raw_id = later_copies.raw_id
    where later_copies.raw_id is null

),

{#- Pseudonyms of the distinct ids only (a few thousand users and devices, one session id per
    tracker session), joined back on the id: hashing every row's three ids was half of this
    model's CPU. A null id joins nothing and stays null. Read from the source rows, not from
    `deduplicated`, so only the id column is read. -#}
user_pseudonyms as (

    select user_id, {{ uba_pseudonymize('user_id', 'user') }} as user_hash
    from (
        select distinct user_id from {{ validated }} as validated where user_id is not null
    ) as ids

),

anonymous_pseudonyms as (

    select anonymous_id, {{ uba_pseudonymize('anonymous_id', 'anon') }} as anonymous_hash
    from (
        select distinct anonymous_id from {{ validated }} as validated
        where anonymous_id is not null
    ) as ids

),

session_pseudonyms as (

    select session_id, {{ uba_pseudonymize('session_id', 'session') }} as session_hint
    from (
        select distinct session_id from {{ validated }} as validated where session_id is not null
    ) as ids

),

{#- The properties object is parsed once per row for all the keys staging reads. -#}
with_properties as (

    {{ uba_select_json_texts(
        'deduplicated', 'properties',
        ['revenue', 'currency', 'page', 'device', 'country', 'plan', 'feature']) }}

),

renamed as (

    select
        with_properties.event_id,
        user_pseudonyms.user_hash,
        anonymous_pseudonyms.anonymous_hash,
        with_properties.event_name,
        cast(with_properties.event_ts as {{ dbt.type_timestamp() }}) as event_ts,
        cast(with_properties.received_at as {{ dbt.type_timestamp() }}) as received_at,
        session_pseudonyms.session_hint,
        cast(with_properties.property_revenue as {{ uba_type_double() }}) as revenue_raw,
        upper(with_properties.property_currency) as currency,
        with_properties.property_page as page,
        lower(with_properties.property_device) as device,
        upper(with_properties.property_country) as country,
        with_properties.property_plan as plan,
        with_properties.property_feature as feature,
        -- Events the tracking plan does not list are kept and flagged (UBA_UNKNOWN_EVENT_POLICY).
        with_properties.event_name in (select event_name from {{ ref('event_taxonomy') }})
            as is_planned_event,
        with_properties.raw_id,
        cast(with_properties.loaded_at as {{ dbt.type_timestamp() }}) as loaded_at,
        with_properties.load_id
    from with_properties
    left join user_pseudonyms
        on with_properties.user_id = user_pseudonyms.user_id
    left join anonymous_pseudonyms
        on with_properties.anonymous_id = anonymous_pseudonyms.anonymous_id
    left join session_pseudonyms
        on with_properties.session_id = session_pseudonyms.session_id

),

final as (

    select
        event_id,
        user_hash,
        anonymous_hash,
        event_name,
        event_ts,
        received_at,
        session_hint,
        coalesce(revenue_raw, 0) as revenue_usd,
        currency,
        page,
        device,
        country,
        plan,
        feature,
        is_planned_event,
        raw_id,
        loaded_at,
        load_id
    from renamed

)

select * from final
