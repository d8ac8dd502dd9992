{#- One row per pseudonymous identifier (user or device) with its holdout bucket (0..9999).
    The bucket hashes the RAW identifier with var uba__holdout_key (macro uba_holdout_bucket),
    so it survives a rotation of the pseudonymization salt: after `--full-refresh` re-hashes
    person keys, each person lands in the same bucket as before. Only the bucket number leaves
    this model, never the raw id. -#}
{#- A table, not a view: the pseudonyms need the salt, which only dbt's connection holds, so a
    view would fail (or, before the salt check was typed, silently give NULL keys) for any
    other reader. Incremental (append): a run reads the load batches it has not consumed
    (uba_new_loads; the loads consumed are recorded in uba_consumed_batches by the post-hook,
    under a hash of var uba__holdout_key: a new key re-buckets everyone) and adds the
    identifiers not stored yet; re-reading every raw row took seconds a day at 10M events. An
    identifier stays once seen (its bucket never changes under one key): raw-data retention
    does not move anyone's group, and erasure deletes the person's row (docs/privacy.md). A
    new salt needs `--full-refresh`, as staging does. -#}
{%- set source_rows = source('app', 'events_validated') -%}
{%- set key_version = local_md5(var('uba__holdout_key')) -%}
{{ config(**uba_loads_consumer_config(key_version)) }}
-- depends_on: {{ ref('stg_app__pseudonym_salts') }}
with

validated as (

    select user_id, anonymous_id from {{ source_rows }}
    {%- if is_incremental() %}
    where {{ uba_new_loads(source_rows, uba_consumed_loads(source_rows, key_version)) }}
    {%- endif %}

),

raw_ids as (

    select distinct 'user' as id_kind, user_id as raw_id
    from validated
    where user_id is not null

    union all

    select distinct 'anon' as id_kind, anonymous_id as raw_id
    from validated
    where anonymous_id is not null

),

final as (

    select
        case
            when id_kind = 'user' then {{ uba_pseudonymize('raw_id', 'user') }}
            else {{ uba_pseudonymize('raw_id', 'anon') }}
        end as person_key,
        id_kind,
        {{ uba_holdout_bucket('raw_id', 'id_kind') }} as holdout_bucket
    from raw_ids

)

select * from final
{%- if is_incremental() %}
where person_key not in (select person_key from {{ this }})
{%- endif %}
