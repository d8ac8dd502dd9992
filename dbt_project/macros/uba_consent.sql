{#- Consent filters (docs/privacy.md, "Consent"). Purposes and defaults: vars
    uba__consent_purposes, uba__consent_defaults; the state per person: dim_user_consent. -#}

{#- A where-clause term: the row's person has consent for `purpose`. -#}
{% macro uba_has_consent(purpose, user_id_column='user_id') -%}
    {{ user_id_column }} not in (
        select user_id from {{ ref('dim_user_consent') }}
        where not has_{{ purpose }}_consent
    )
{%- endmacro %}

{#- Post-hook on the feature models (dbt_project.yml): delete the rows of people without
    consent for `purpose`. A hook, so incremental models also lose the rows they kept from
    before a withdrawal, and no feature SQL changes. -#}
{% macro uba_drop_without_consent(purpose) -%}
    {{ return(adapter.dispatch('uba_drop_without_consent', 'uba')(purpose)) }}
{%- endmacro %}

{% macro default__uba_drop_without_consent(purpose) -%}
    {%- set consent = ref('dim_user_consent') -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list
        if execute else [] -%}
    {%- if 'user_id' in columns -%}
    delete from {{ this }} where user_id in (
        select user_id from {{ consent }} where not has_{{ purpose }}_consent
    )
    {%- endif -%}
{%- endmacro %}
