{#- Generic data tests (dbt_utils cannot be installed here). -#}

{#- Fails on every row where `expression` is not true (null counts as failing). On a column,
    as in dbt_utils, the test checks `<column> <expression>` (e.g. expression: ">= 0"). -#}
{% test uba_expression_is_true(model, expression, column_name=none) %}
    {%- set condition = expression if column_name is none else column_name ~ ' ' ~ expression -%}
    select * from {{ model }}
    where not coalesce(({{ condition }}), false)
{% endtest %}

{#- Fails when a combination of columns repeats: one row per repeated combination, with its
    copies. -#}
{% test uba_unique_combination_of_columns(model, combination_of_columns) %}
    {{ adapter.dispatch('uba_repeated_combinations', 'uba')(model, combination_of_columns) }}
{% endtest %}

{% macro default__uba_repeated_combinations(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as copies
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endmacro %}

{% macro duckdb__uba_repeated_combinations(model, columns) %}
    {{ uba_repeated_by_digest(model, columns, 'true', columns | join(', '), 'copies') }}
{% endmacro %}

{#- dbt's own `unique` test on DuckDB, by digest (uba_repeated_by_digest): the same rows as
    default__test_unique (unique_field, n_records: each non-null value held by more than one
    row). Scoped to the newest loads' keys (__new_load_keys__, macros/uba_test_scope.sql), its
    rows are about a day's, found by reading the whole table: grouped by the key at once, as
    dbt's own test does, they are read once instead of twice (digests, then the repeats): on a
    10M day stg_app__events' 1.2-1.9 -> 0.7-1.0 s of CPU, the gate output's 0.8-1.0 -> 0.5-0.6.
    Other scopes keep the digests: a people scope's rows are many (a new-snapshot day's touched
    people hold ~1.2M of a 10M build's 3.6M funnel steps), and grouping them by their text made
    the funnel tables' combination tests slower (0.31-0.46 -> 0.49-0.68 s). -#}
{% macro duckdb__test_unique(model, column_name) %}
    {%- if model is string and config.get('where') == '__new_load_keys__' %}
    {{ default__test_unique(model, column_name) }}
    {%- else %}
    {{ uba_repeated_by_digest(
        model, [column_name], column_name ~ ' is not null', column_name ~ ' as unique_field',
        'n_records') }}
    {%- endif %}
{% endmacro %}

{#- The keys (`columns`) that more than one row of `model` holding `condition` shares, each with
    its count (`count_alias`), as grouping by the keys finds them, without grouping the text:
    only the rows whose hash repeats (uba_repeated_digests) are grouped by the key itself, so a
    hash two different keys share (a collision) is not a repeat. 10M text ids: 0.8-1.0 s
    instead of 1.3-1.7 s alone (docs/performance-log.md, fifty-third session). -#}
{% macro uba_repeated_by_digest(model, columns, condition, select_list, count_alias) %}
    {%- set key = columns | join(', ') %}
    with {{ uba_repeated_digests(model, key, condition) }}

    select {{ select_list }}, count(*) as {{ count_alias }}
    from {{ model }}
    where {{ condition }}
        and {{ uba_key_digest(key) }} in (select digest from repeated_digests)
    group by {{ key }}
    having count(*) > 1
{% endmacro %}

{#- A query of one row, `alias`: the number of distinct non-null values of `column` in
    `relation`, as count(distinct) counts them. On DuckDB without grouping the text: the
    non-null rows less the repeats, counted among the rows whose hash repeats only
    (uba_repeated_digests), by the value itself, so a collision is no repeat. -#}
{% macro uba_distinct_count(relation, column, alias) %}
    {{ return(adapter.dispatch('uba_distinct_count', 'uba')(relation, column, alias)) }}
{% endmacro %}

{% macro default__uba_distinct_count(relation, column, alias) %}
    select count(distinct {{ column }}) as {{ alias }}
    from {{ relation }}
{% endmacro %}

{% macro duckdb__uba_distinct_count(relation, column, alias) %}
    {%- set condition = column ~ ' is not null' %}
    with {{ uba_repeated_digests(relation, column, condition) }},

    repeats as (
        select count(*) - count(distinct {{ column }}) as repeated_rows
        from {{ relation }}
        where {{ condition }}
            and {{ uba_key_digest(column) }} in (select digest from repeated_digests)
    )

    select (select count(*) from digests) - repeats.repeated_rows as {{ alias }}
    from repeats
{% endmacro %}

{#- Two CTEs (after a `with`): `digests`, the digest of `key` (uba_key_digest: on DuckDB its
    64-bit hash) for each row of `model` holding `condition`, and `repeated_digests`, the
    digests that more than one row holds, found by sorting them and comparing neighbours
    (cheaper than grouping them). -#}
{% macro uba_repeated_digests(model, key, condition) %}
    digests as (
        select {{ uba_key_digest(key) }} as digest
        from {{ model }}
        where {{ condition }}
    ),

    repeated_digests as (
        select digest
        from (
            select digest, lead(digest) over (order by digest) as next_digest
            from digests
        ) as sorted_digests
        where digest = next_digest
    )
{%- endmacro %}

{#- Fails once for each column of the tested model that declares a not_null constraint and
    holds a null: one row per such column (column_name, null_rows). A model with an enforced
    contract declares its non-null columns once, as constraints: the warehouse refuses a null
    where the engine enforces them (DuckDB, PostgreSQL, Snowflake, BigQuery), and this one test
    checks them on every engine, Spark's non-Delta tables included (spark__persist_constraints);
    the daily replay counts it as passed where the stored table has them all NOT NULL
    (python_models/dbt_daily_tests.py, implied_tests).
    One node per model instead of a not_null node per column: dbt spends ~50 ms of its own on
    each test node (docs/performance.md), and the columns are counted in one scan. -#}
{% test uba_not_null_columns(model) %}
    {%- set columns = uba_not_null_constrained_columns() %}
    with null_counts as (
        select
        {%- for column in columns %}
            count(*) - count({{ column }}) as null_rows_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
        from {{ model }}
    ),

    constrained_columns as (
        {%- for column in columns %}
        select {{ loop.index }} as column_position, '{{ column }}' as column_name
        {{- ' union all' if not loop.last }}
        {%- endfor %}
    ),

    counted as (
        select
            constrained_columns.column_name,
            case constrained_columns.column_position
            {%- for column in columns %}
                when {{ loop.index }} then null_counts.null_rows_{{ loop.index }}
            {%- endfor %}
            end as null_rows
        from null_counts
        cross join constrained_columns
    )

    select column_name, null_rows from counted where null_rows > 0
{% endtest %}

{#- The columns of the model a data test is attached to whose yml declares a not_null
    constraint, in yml order; none while dbt parses. A model that carries uba_not_null_columns
    and declares none stops the compile: the test could never fail. -#}
{% macro uba_not_null_constrained_columns() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set attached = model.get('attached_node') if model is mapping else none -%}
    {%- set node = graph.nodes.get(attached) if attached else none -%}
    {%- set columns = [] -%}
    {%- for column in (node.columns.values() if node else []) -%}
        {%- if column.constraints | selectattr('type', 'equalto', 'not_null') | list -%}
            {%- do columns.append(column.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error(
            "uba_not_null_columns on " ~ attached ~ ": no column declares a not_null constraint"
        ) }}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}
