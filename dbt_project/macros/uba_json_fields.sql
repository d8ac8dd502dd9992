{#- `relation`'s rows with one text column `<prefix><key>` per key of `keys`: the value of that
    top-level key of the JSON object in `column` (null when absent), as uba_json_text gives it.
    DuckDB parses the object once per row for all the keys (one call with a list of paths);
    elsewhere each key is one uba_json_text call. -#}
{% macro uba_select_json_texts(relation, column, keys, prefix='property_') -%}
    {{ return(adapter.dispatch('uba_select_json_texts', 'uba')(relation, column, keys, prefix)) }}
{%- endmacro %}

{% macro default__uba_select_json_texts(relation, column, keys, prefix) -%}
    select
        {{ relation }}.*{% for key in keys %},
        {{ uba_json_text(relation ~ '.' ~ column, key) }} as {{ prefix }}{{ key }}{% endfor %}
    from {{ relation }}
{%- endmacro %}

{% macro duckdb__uba_select_json_texts(relation, column, keys, prefix) -%}
    select
        parsed.* exclude (uba_json_values){% for key in keys %},
        parsed.uba_json_values[{{ loop.index }}] as {{ prefix }}{{ key }}{% endfor %}
    from (
        select
            {{ relation }}.*,
            json_extract_string({{ relation }}.{{ column }}, [
                {%- for key in keys %}'$.{{ key }}'{{ ', ' if not loop.last }}{% endfor -%}
            ]) as uba_json_values
        from {{ relation }}
    ) as parsed
{%- endmacro %}
