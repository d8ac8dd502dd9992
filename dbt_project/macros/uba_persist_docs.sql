{#- persist_docs on DuckDB (an override of dbt's dispatch for this adapter): an incremental
    model's table keeps its comments between runs, so a daily run writes them only when they
    differ from the YAML's (a description edited since, a column added, a table rebuilt). One
    query compares them all; dbt's own persist_docs writes every comment as before when any
    differs, or when a documented column is missing (dbt then warns about it as it always has).
    Without this, every incremental node of every run looked its columns up twice and wrote
    its table's and every column's comment again (~45 ms of dbt's per-node time; a catalog
    change DuckDB then checkpoints). Tables and views are created anew by their builds: they
    go straight to dbt's. -#}
{% macro duckdb__persist_docs(relation, model, for_relation=true, for_columns=true) -%}
    {%- if config.get('materialized') == 'incremental' and not should_full_refresh()
        and execute and uba_stored_docs_current(relation, model, for_relation, for_columns) -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(dbt.default__persist_docs(relation, model, for_relation, for_columns)) }}
{%- endmacro %}

{#- True when `relation`'s stored comments are the ones dbt's persist_docs would write: the
    table's description (when documented) and each documented column's, an absent comment
    counting as an empty one; a documented column the table lacks is not current. -#}
{% macro uba_stored_docs_current(relation, model, for_relation, for_columns) -%}
    {%- set wanted = [] -%}
    {%- if for_relation and config.persist_relation_docs() and model.description -%}
        {%- do wanted.append("(cast(null as varchar), false, " ~ duckdb_escape_comment(model.description) ~ ")") -%}
    {%- endif -%}
    {%- if for_columns and config.persist_column_docs() and model.columns -%}
        {%- for name, column in model.columns.items() -%}
            {%- do wanted.append("(" ~ duckdb_escape_comment(name) ~ ", "
                ~ ('true' if column.get('quote') else 'false') ~ ", "
                ~ duckdb_escape_comment(column.get('description') or '') ~ ")") -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if not wanted -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set where -%}
        database_name = '{{ relation.database }}' and schema_name = '{{ relation.schema }}'
    {%- endset -%}
    {%- set differing = uba_query_value(
        "with wanted(column_name, is_quoted, comment) as (values " ~ wanted | join(", ") ~ "),"
        ~ " stored as ("
        ~ " select column_name, comment from duckdb_columns() where " ~ where
        ~ " and table_name = '" ~ relation.identifier ~ "'"
        ~ " union all select null, comment from duckdb_tables() where " ~ where
        ~ " and table_name = '" ~ relation.identifier ~ "')"
        ~ " select count(*) from wanted where not exists (select 1 from stored"
        ~ " where (stored.column_name is null and wanted.column_name is null"
        ~ " or case when wanted.is_quoted then stored.column_name = wanted.column_name"
        ~ " else lower(stored.column_name) = lower(wanted.column_name) end)"
        ~ " and coalesce(stored.comment, '') = wanted.comment)"
    ) | int -%}
    {{ return(differing == 0) }}
{%- endmacro %}
