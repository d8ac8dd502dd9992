{#- Generic data tests (dbt_utils cannot be installed here). -#}

{#- Fails on every row where `expression` is not true (null counts as failing). -#}
{% test uba_expression_is_true(model, expression) %}
    select * from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}

{#- Fails when a combination of columns repeats. -#}
{% test uba_unique_combination_of_columns(model, combination_of_columns) %}
    select {{ combination_of_columns | join(', ') }}, count(*) as copies
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}
