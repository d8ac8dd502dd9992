{#- Salted hash of an identifier: first 32 hex chars of sha256(salt|namespace|value).
    Must match python_models.privacy.pseudonymize. The salt comes from UBA_PSEUDONYM_SALT. -#}
{% macro uba_pseudonymize(column, namespace) -%}
    {{ return(adapter.dispatch('uba_pseudonymize', 'uba')(column, namespace)) }}
{%- endmacro %}

{#- DuckDB: the salt is a session variable set by the dbt-duckdb plugin
    python_models.dbt_salt_plugin (profiles.yml), so it never appears in compiled SQL or logs.
    Without the plugin (a plain dbt-duckdb install, target duckdb_plain) DuckDB reads it from
    the file UBA_PSEUDONYM_SALT_FILE names: the SQL holds the path, not the salt.
    The casts matter: an untyped NULL from getvariable() or error() inside `||` is folded to
    NULL, which would silently give every row a NULL pseudonym instead of stopping. -#}
{% macro duckdb__uba_pseudonymize(column, namespace) -%}
    {%- set salt_file = env_var('UBA_PSEUDONYM_SALT_FILE', '') -%}
    case when {{ column }} is null then null else
        left(sha256(
            coalesce(
                cast(getvariable('uba_pseudonym_salt') as varchar),
                {% if salt_file -%}
                (select regexp_replace(content, '\r?\n$', '')
                    from read_text('{{ salt_file | replace("'", "''") }}')),
                {%- endif %}
                cast(error('the pseudonymization salt is not set: add the dbt-duckdb plugin '
                    || 'python_models.dbt_salt_plugin to the profile, or set '
                    || 'UBA_PSEUDONYM_SALT_FILE to a file holding the salt (see profiles.yml)')
                    as varchar)
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
    {{- uba_string_body(salt) -}}
{%- endmacro %}
