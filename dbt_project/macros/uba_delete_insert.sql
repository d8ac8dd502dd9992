{#- dbt's delete+insert strategy (an override of dbt's own macro of this name, for every
    adapter), plus one bound: a model whose `meta` names `uba_replaced_from` (a column whose
    value never changes for a unique key, e.g. event_ts for event_id) deletes only stored rows
    at or after the smallest value of that column among the new rows, written in as a literal.
    It deletes the same rows (a replaced row has the same value as its replacement), but DuckDB
    can skip the row groups of a table stored in that column's order instead of matching every
    stored key. Read after the new rows are in their temporary table; no new rows, no bound. -#}
{% macro get_incremental_delete_insert_sql(arg_dict) -%}
    {%- set column = (config.get('meta') or {}).get('uba_replaced_from') -%}
    {%- if column and execute -%}
        {%- set bound = run_query(
            'select min(' ~ column ~ ') from ' ~ arg_dict['temp_relation']).rows[0][0] -%}
        {%- if bound is not none -%}
            {%- set type = dbt.type_timestamp() if bound.hour is defined else 'date' -%}
            {%- do arg_dict.update({'incremental_predicates':
                (arg_dict['incremental_predicates'] or [])
                + [column ~ " >= cast('" ~ bound ~ "' as " ~ type ~ ")"]}) -%}
        {%- endif -%}
    {%- endif -%}
    {{- return(adapter.dispatch('get_incremental_delete_insert_sql', 'dbt')(arg_dict)) -}}
{%- endmacro %}
