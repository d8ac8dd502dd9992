{#- Salted hash of an identifier: first 32 hex chars of sha256(salt|namespace|value).
    Must match python_models.privacy.pseudonymize. The salt comes from UBA_PSEUDONYM_SALT. -#}
{% macro uba_pseudonymize(column, namespace) -%}
    {{ return(adapter.dispatch('uba_pseudonymize', 'uba')(column, namespace)) }}
{%- endmacro %}

{#- DuckDB: the salt is a session variable set by the dbt-duckdb plugin
    python_models.dbt_salt_plugin (profiles.yml), so it never appears in compiled SQL or logs. -#}
{% macro duckdb__uba_pseudonymize(column, namespace) -%}
    case when {{ column }} is null then null else
        left(sha256(
            coalesce(
                getvariable('uba_pseudonym_salt'),
                error('the pseudonymization salt is not set: add the dbt-duckdb plugin '
                    || 'python_models.dbt_salt_plugin to the profile (see profiles.yml)')
            ) || '|{{ namespace }}|' || {{ column }}
        ), 32)
    end
{%- endmacro %}

{#- Other adapters get the salt inlined from UBA_PSEUDONYM_SALT (it then shows in compiled SQL
    under target/: keep that folder private there). -#}
{% macro default__uba_pseudonymize(column, namespace) -%}
    case when {{ column }} is null then null else
        left(sha256('{{ uba_salt() }}' || '|{{ namespace }}|' || {{ column }}), 32)
    end
{%- endmacro %}

{% macro postgres__uba_pseudonymize(column, namespace) -%}
    case when {{ column }} is null then null else
        left(encode(sha256(convert_to('{{ uba_salt() }}' || '|{{ namespace }}|' || {{ column }}, 'UTF8')), 'hex'), 32)
    end
{%- endmacro %}

{% macro uba_salt() -%}
    {#- No default: the committed development salt would make pseudonyms reversible. `uba build`
        passes the configured salt (or, opted in with UBA_ALLOW_DEV_SALT, the dev one). -#}
    {%- set salt = env_var('UBA_PSEUDONYM_SALT') -%}
    {{- salt | replace("'", "''") -}}
{%- endmacro %}
