{#- A DuckDB view keeps its query's text, and dbt writes every relation with its catalog (the
    database file's name: "warehouse"."intermediate"."int_events_sessionized"). DuckDB 1.5
    resolves a view's schema-qualified names in the view's own catalog, so the catalog is
    dropped from the view's query: the views keep working when the file is copied or renamed
    (a test's copy, a backup restored under another name) or attached under another alias.
    The catalog-qualified form failed there with `Catalog "warehouse" does not exist`. -#}
{% macro duckdb__create_view_as(relation, sql) -%}
    {%- set within_catalog = sql | replace(adapter.quote(relation.database) ~ '.', '') -%}
    {{- return(dbt.duckdb__create_view_as(relation, within_catalog)) -}}
{%- endmacro %}
