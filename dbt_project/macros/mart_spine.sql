{#- Portable integer and date spines (no dbt_utils: hub packages cannot be installed here).
    Cross joins of a ten-row digits table work the same on DuckDB and PostgreSQL. -#}
{% macro mart_integers(n_digits=4) -%}
    {%- set digits -%}
        (select 0 as d union all select 1 union all select 2 union all select 3 union all
         select 4 union all select 5 union all select 6 union all select 7 union all
         select 8 union all select 9)
    {%- endset -%}
    select
        {% for i in range(n_digits) -%}
        digits_{{ i }}.d * {{ 10 ** i }}{{ " + " if not loop.last }}
        {%- endfor %} as n
    from {% for i in range(n_digits) -%}
        {{ digits }} as digits_{{ i }}{{ ", " if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- One row per date from start_date to end_date (inclusive) stepping step_days; both bounds are
    SQL expressions returning a date. At most 10 000 steps. -#}
{% macro mart_date_spine(start_date, end_date, step_days=1) -%}
    select spine_date
    from (
        select
            cast({{ dbt.dateadd('day', 'integers.n * ' ~ step_days, start_date) }} as date)
                as spine_date
        from ({{ mart_integers(4) }}) as integers
    ) as spine
    where spine_date <= {{ end_date }}
{%- endmacro %}
