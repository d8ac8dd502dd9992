{#- One row per pseudonymization salt that has hashed identifiers into this warehouse, as a
    fingerprint (a hash of the salt, never the salt). Staging and the core marts are
    incremental, so rows hashed under an earlier salt keep their old keys: a changed salt would
    silently split every person in two. This model's test fails the build (and skips staging,
    which depends on it) until `dbt build --full-refresh` re-hashes everything.
    first_used_at comes from the data (the newest raw load hashed under the salt), not the
    clock, so two builds of the same data give the same table. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

with

current_salt as (

    select
        {{ uba_pseudonymize("'salt-fingerprint'", 'fingerprint') }} as salt_fingerprint,
        (select max(loaded_at) from {{ source('app', 'events_validated') }}) as first_used_at

)

select
    salt_fingerprint,
    cast(first_used_at as {{ dbt.type_timestamp() }}) as first_used_at
from current_salt

{% if is_incremental() %}
where salt_fingerprint not in (select salt_fingerprint from {{ this }})
{% endif %}
