{#- Small cross-database helpers (DuckDB default, PostgreSQL override): no dbt packages can be
    installed here, so these stand in for dbt_utils-style shims. -#}

{#- Text value of a top-level key of a JSON object held as text; null when absent. -#}
{% macro uba_json_text(column, key) -%}
    {{ return(adapter.dispatch('uba_json_text', 'uba')(column, key)) }}
{%- endmacro %}

{% macro default__uba_json_text(column, key) -%}
    json_extract_string({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro postgres__uba_json_text(column, key) -%}
    (({{ column }})::json ->> '{{ key }}')
{%- endmacro %}

{#- 8-byte floating point type (DuckDB's FLOAT is 4 bytes, so dbt.type_float() is not enough). -#}
{% macro uba_type_double() -%}
    {{ return(adapter.dispatch('uba_type_double', 'uba')()) }}
{%- endmacro %}

{% macro default__uba_type_double() -%}double{%- endmacro %}

{% macro postgres__uba_type_double() -%}double precision{%- endmacro %}

{#- Seconds since the epoch as a floating point number (keeps sub-second precision). -#}
{% macro uba_epoch_seconds(ts) -%}
    {{ return(adapter.dispatch('uba_epoch_seconds', 'uba')(ts)) }}
{%- endmacro %}

{% macro default__uba_epoch_seconds(ts) -%}
    epoch({{ ts }})
{%- endmacro %}

{% macro postgres__uba_epoch_seconds(ts) -%}
    cast(extract(epoch from {{ ts }}) as double precision)
{%- endmacro %}

{#- Timestamp rendered as text in a fixed ISO-like format, identical on every target
    (used inside session_id, so it must not depend on the database's default cast). -#}
{% macro uba_timestamp_text(ts) -%}
    {{ return(adapter.dispatch('uba_timestamp_text', 'uba')(ts)) }}
{%- endmacro %}

{% macro default__uba_timestamp_text(ts) -%}
    strftime({{ ts }}, '%Y-%m-%d %H:%M:%S.%f')
{%- endmacro %}

{% macro postgres__uba_timestamp_text(ts) -%}
    to_char({{ ts }}, 'YYYY-MM-DD HH24:MI:SS.US')
{%- endmacro %}

{#- Calendar date of a UTC timestamp (stored without time zone) in the IANA time zone
    `time_zone`, e.g. 'Europe/Berlin'. Standard SQL AT TIME ZONE (DuckDB's ICU, PostgreSQL). -#}
{% macro uba_local_date(ts, time_zone) -%}
    {{ return(adapter.dispatch('uba_local_date', 'uba')(ts, time_zone)) }}
{%- endmacro %}

{% macro default__uba_local_date(ts, time_zone) -%}
    {%- if time_zone | upper == 'UTC' -%}
    cast({{ ts }} as date)
    {%- else -%}
    cast(({{ ts }} at time zone 'UTC') at time zone '{{ time_zone }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- A sum that is the same bit for bit on every run: a floating point sum depends on the order
    in which the engine's threads add rows, an exact decimal sum does not. Each value is rounded
    to `scale` decimals (6 suits money, as in fct_sessions) before the sum; the result is a
    double again. -#}
{% macro uba_exact_sum(expression, scale=6) -%}
    cast({{ uba_exact_decimal_sum(expression, scale) }} as {{ uba_type_double() }})
{%- endmacro %}

{#- The exact sum itself, as a decimal: what a running total stores (decimal sums add up
    exactly, so stored + new equals the sum of everything; uba_exact_sum's double would not). -#}
{% macro uba_exact_decimal_sum(expression, scale=6) -%}
    sum(cast({{ expression }} as decimal(38, {{ scale }})))
{%- endmacro %}

{#- Microseconds since the epoch as a BIGINT: an exact, numeric ordering key (RANGE frames with
    a time offset work on it everywhere, unlike interval offsets). -#}
{% macro uba_epoch_microseconds(ts) -%}
    {{ return(adapter.dispatch('uba_epoch_microseconds', 'uba')(ts)) }}
{%- endmacro %}

{% macro default__uba_epoch_microseconds(ts) -%}
    epoch_us({{ ts }})
{%- endmacro %}

{% macro postgres__uba_epoch_microseconds(ts) -%}
    cast(extract(epoch from {{ ts }}) * 1000000 as bigint)
{%- endmacro %}

{#- Aggregates: the first / last non-null `value` of a group by the columns `order_by` (a list;
    ties are the caller's to break), without a window over the rows. -#}
{% macro uba_first_by(value, order_by) -%}
    {{ return(adapter.dispatch('uba_first_by', 'uba')(value, order_by, false)) }}
{%- endmacro %}

{% macro uba_last_by(value, order_by) -%}
    {{ return(adapter.dispatch('uba_first_by', 'uba')(value, order_by, true)) }}
{%- endmacro %}

{% macro default__uba_first_by(value, order_by, last) -%}
    {%- set key = order_by[0] if order_by | length == 1 else '(' ~ order_by | join(', ') ~ ')' -%}
    {{ 'arg_max' if last else 'arg_min' }}({{ value }}, {{ key }})
        filter (where {{ value }} is not null)
{%- endmacro %}

{% macro postgres__uba_first_by(value, order_by, last) -%}
    (array_agg({{ value }} order by
        {%- for column in order_by %} {{ column }}{{ ' desc' if last }}{{ ',' if not loop.last }}
        {%- endfor %}) filter (where {{ value }} is not null))[1]
{%- endmacro %}

{#- The continuous percentile (interpolated) of `column` in a group, `fraction` in [0, 1]. -#}
{% macro uba_percentile_cont(fraction, column) -%}
    {{ return(adapter.dispatch('uba_percentile_cont', 'uba')(fraction, column)) }}
{%- endmacro %}

{% macro default__uba_percentile_cont(fraction, column) -%}
    percentile_cont({{ fraction }}) within group (order by {{ column }})
{%- endmacro %}

{#- ISO day of the week of a timestamp: 1 = Monday ... 7 = Sunday. -#}
{% macro uba_iso_weekday(ts) -%}
    {{ return(adapter.dispatch('uba_iso_weekday', 'uba')(ts)) }}
{%- endmacro %}

{% macro default__uba_iso_weekday(ts) -%}
    extract(isodow from {{ ts }})
{%- endmacro %}

{#- `with name as {{ uba_cte_not_materialized() }} (...)`: asks DuckDB and PostgreSQL to inline a
    CTE that is read more than once (cheaper than materializing it); other engines have no such
    hint and decide for themselves. -#}
{% macro uba_cte_not_materialized() -%}
    {{ return(adapter.dispatch('uba_cte_not_materialized', 'uba')()) }}
{%- endmacro %}

{% macro default__uba_cte_not_materialized() -%}not materialized{%- endmacro %}

{#- A value standing for a text key when grouping or sorting by it: equal keys give equal
    values. DuckDB: its 64-bit hash (a fixed-width key, cheaper than the text; of several
    columns too, `a, b`); a shared hash may be a collision, so a caller re-checks the key
    itself where it matters. Elsewhere the key (one column). -#}
{% macro uba_key_digest(column) -%}
    {{ return(adapter.dispatch('uba_key_digest', 'uba')(column)) }}
{%- endmacro %}

{% macro default__uba_key_digest(column) -%}{{ column }}{%- endmacro %}

{% macro duckdb__uba_key_digest(column) -%}hash({{ column }}){%- endmacro %}

{#- A condition that holds when the rows of `left` and of `right`, as the columns or
    expressions given for each (`a, b`), are the same multiset, to skip the join a whole-table
    check would make to find the rows that differ. On DuckDB: equal sums of each row's 64-bit
    hash (uba_key_digest), two streaming scans (two 10M-row marts: 0.7 s, the join 1.9-2.5 s
    alone); different rows summing equal would be a collision (~2^-64). Elsewhere it never
    holds: the join runs. -#}
{% macro uba_same_rows_by_digest(left, left_columns, right, right_columns) -%}
    {{ return(adapter.dispatch('uba_same_rows_by_digest', 'uba')(
        left, left_columns, right, right_columns)) }}
{%- endmacro %}

{% macro default__uba_same_rows_by_digest(left, left_columns, right, right_columns) -%}
    false
{%- endmacro %}

{% macro duckdb__uba_same_rows_by_digest(left, left_columns, right, right_columns) -%}
    coalesce(
        (select sum({{ uba_key_digest(left_columns) }}) from {{ left }})
            = (select sum({{ uba_key_digest(right_columns) }}) from {{ right }}),
        false)
{%- endmacro %}
