{#- Schemas are the layer names (staging, intermediate, marts, ...), not target_schema + '_' + name,
    so BI tools and Python read stable names on every target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
