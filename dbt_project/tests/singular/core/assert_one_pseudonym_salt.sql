{#- Fails when identifiers in this warehouse were hashed under more than one salt: staging and
    the core marts are incremental, so old rows would keep keys from the old salt and every
    person would be split in two. Fix: `dbt build --full-refresh` (or `uba build
    --full-refresh`) re-hashes everything under the current salt. Staging depends on
    stg_app__pseudonym_salts, so it does not run while this fails. Tagged so that a build
    running the other data tests after its models (python_models/dbt_daily_tests.py,
    build_and_test) still runs this one as a node, before staging. -#}
{{ config(tags=['uba_stops_the_build']) }}
select
    salt_fingerprint,
    first_used_at,
    'UBA_PSEUDONYM_SALT changed since the last build: run dbt build --full-refresh' as fix
from {{ ref('stg_app__pseudonym_salts') }}
where (select count(*) from {{ ref('stg_app__pseudonym_salts') }}) > 1
