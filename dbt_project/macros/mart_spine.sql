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

{#- rpt_load_hourly's incremental run: the first hour it recounts, the earlier of the first hour
    with an event written since it last consumed int_events_sessionized (new, re-stitched or
    re-cut) and the stored last hour (complete once later events came), as a timestamp literal
    read before its SQL runs (a literal lets DuckDB skip fct_events' earlier row groups: it is
    stored in time order). Every hour when it re-reads everything or stores no hour; while dbt
    only parses, the same as a subquery. -#}
{% macro load_hourly_recounted_from() -%}
    {%- set sessionized = ref('int_events_sessionized') -%}
    {%- set from_changes -%}
        least(
            coalesce(
                (select {{ dbt.date_trunc('hour', 'min(event_ts)') }}
                 from ({{ uba_changed_rows(sessionized) }}) as changed),
                (select max(hour_ts) from {{ this }})
            ),
            (select max(hour_ts) from {{ this }})
        )
    {%- endset -%}
    {{- uba_recounted_from_literal('load_hourly_recounted_from', 'hour_ts', from_changes,
        dbt.type_timestamp()) -}}
{%- endmacro %}

{#- rpt_active_users_daily's incremental run: the first day it recounts, the earliest day with
    events written since it last consumed int_events_sessionized (new, re-stitched or re-cut,
    so also a day a re-stitched event left), less `days_before` days, as a date literal read
    before its SQL runs (fct_user_activity_daily is stored in day order by a full build, so a
    read from it skips the earlier row groups). Every day when it re-reads everything or stores
    no day; the day after the stored last day when no event was written (nothing recounted);
    while dbt only parses, the same as a subquery. -#}
{% macro active_users_recounted_from(days_before=0) -%}
    {%- set from_changes -%}
        coalesce(
            (select min(event_date)
             from ({{ uba_changed_user_days(ref('int_events_sessionized')) }}) as changed),
            cast({{ dbt.dateadd('day', 1, '(select max(activity_date) from ' ~ this ~ ')') }}
                as date)
        )
    {%- endset -%}
    {{- uba_recounted_from_literal('active_users_recounted_from', 'activity_date', from_changes,
        'date', days_before) -}}
{%- endmacro %}

{#- The first period an incremental report (a consumer of int_events_sessionized) recounts:
    `from_changes`, a scalar SQL expression, less `days_before` days, as a `type` literal read
    once per run before the model's SQL runs (uba_cached_query_value under `key`); the start
    of time (everything) when the report re-reads everything or stores no row yet (no
    `stored_column` value in {{ this }}) or the expression is null; while dbt only parses, the
    same as a subquery. -#}
{% macro uba_recounted_from_literal(key, stored_column, from_changes, type, days_before=0) -%}
    {%- set sql -%}
        select case
            when {{ uba_reads_everything(ref('int_events_sessionized')) }}
                or (select max({{ stored_column }}) from {{ this }}) is null then null
            else {{ from_changes }}
        end
    {%- endset -%}
    {%- if not execute -%}
    cast({{ dbt.dateadd('day', -days_before,
        "coalesce((" ~ sql ~ "), cast('1900-01-01' as " ~ type ~ "))") }} as {{ type }})
    {%- else -%}
    {%- set value = uba_cached_query_value(key, sql) -%}
    {%- set start = value - modules.datetime.timedelta(days=days_before)
        if value is not none else '1900-01-01' -%}
    cast('{{ start }}' as {{ type }})
    {%- endif -%}
{%- endmacro %}
