{#- Generic data tests (dbt_utils cannot be installed here). -#}

{#- Fails on every row where `expression` is not true (null counts as failing). On a column,
    as in dbt_utils, the test checks `<column> <expression>` (e.g. expression: ">= 0"). -#}
{% test uba_expression_is_true(model, expression, column_name=none) %}
    {%- set condition = expression if column_name is none else column_name ~ ' ' ~ expression -%}
    select * from {{ model }}
    where not coalesce(({{ condition }}), false)
{% endtest %}

{#- Fails when a combination of columns repeats. -#}
{% test uba_unique_combination_of_columns(model, combination_of_columns) %}
    select {{ combination_of_columns | join(', ') }}, count(*) as copies
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}
