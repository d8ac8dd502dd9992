{#- The cross-database helpers of uba_cross_db.sql, uba_pseudonymize.sql and uba_impact.sql for
    Spark (run for real: tests/integration/test_spark_engine.py), Snowflake and BigQuery
    (rendered and parsed in their dialect by sqlglot: tests/unit/test_engines.py). One file per
    concern would scatter each engine; one file per engine keeps its spellings together.
    Hashes must match python_models.privacy.pseudonymize (lower-case hex of sha256). -#}

{#- `value` as the inside of a quoted string literal on the target: standard SQL doubles a
    quote; Spark and BigQuery read '' as two adjacent literals (Spark silently concatenates
    them), and they and Snowflake read a backslash as an escape: both escaped with one. -#}
{% macro uba_string_body(value) -%}
    {%- if target.type in ('spark', 'databricks', 'bigquery', 'snowflake') -%}
    {{- value | replace('\\', '\\\\') | replace("'", "\\'") -}}
    {%- else -%}
    {{- value | replace("'", "''") -}}
    {%- endif -%}
{%- endmacro %}

{#- The materialization of the incremental models that delete rows on an incremental run
    (delete+insert, or a deleting pre-hook: the consumers of int_events_sessionized's batches).
    Spark's Parquet tables have no row-level delete, so there they are tables rebuilt in full
    on every run. Append-only models (stg_app__events) stay incremental on Spark too. -#}
{% macro uba_incremental_unless_spark() -%}
    {{- return('table' if target.type == 'spark' else 'incremental') -}}
{%- endmacro %}

{#- Spark SQL ------------------------------------------------------------------------------ -#}

{#- No batch bookkeeping (uba_batches.sql) on Spark: its consumers are rebuilt in full. -#}
{% macro spark__uba_create_batch_manifest() -%}{%- endmacro %}
{% macro spark__uba_record_consumed_batch(producer) -%}{%- endmacro %}
{% macro spark__uba_forget_consumers_on_full_refresh() -%}{%- endmacro %}
{% macro spark__uba_record_consumed_loads(source, version) -%}{%- endmacro %}
{% macro spark__uba_record_loads_read(source, version) -%}{%- endmacro %}

{% macro spark__uba_json_text(column, key) -%}
    get_json_object({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro spark__uba_epoch_seconds(ts) -%}
    (cast(unix_micros(cast({{ ts }} as timestamp)) as double) / 1000000.0)
{%- endmacro %}

{% macro spark__uba_epoch_microseconds(ts) -%}
    unix_micros(cast({{ ts }} as timestamp))
{%- endmacro %}

{% macro spark__uba_timestamp_text(ts) -%}
    date_format({{ ts }}, 'yyyy-MM-dd HH:mm:ss.SSSSSS')
{%- endmacro %}

{% macro spark__uba_local_date(ts, time_zone) -%}
    to_date(from_utc_timestamp({{ ts }}, '{{ time_zone }}'))
{%- endmacro %}

{% macro spark__uba_pseudonymize(column, namespace) -%}
    case when {{ column }} is null then null else
        left(sha2(concat('{{ uba_salt() }}', '|{{ namespace }}|', {{ column }}), 256), 32)
    end
{%- endmacro %}

{% macro spark__uba_first_by(value, order_by, last) -%}
    {%- set key = order_by[0] if order_by | length == 1 else 'struct(' ~ order_by | join(', ') ~ ')' -%}
    {{ 'max_by' if last else 'min_by' }}({{ value }}, {{ key }})
        filter (where {{ value }} is not null)
{%- endmacro %}

{% macro spark__uba_holdout_bucket(raw_id, namespace) -%}
    (cast(conv(left(sha2(concat(
        '{{ uba_holdout_key() }}', '|holdout|', {{ namespace }}, '|', {{ raw_id }}
    ), 256), 8), 16, 10) as bigint) % 10000)
{%- endmacro %}

{% macro spark__uba_iso_weekday(ts) -%}
    extract(dayofweek_iso from {{ ts }})
{%- endmacro %}

{% macro spark__uba_cte_not_materialized() -%}{%- endmacro %}

{#- funnel_attempts' chains (funnels.sql) without a recursive CTE (Spark runs one as a job per
    level, re-planning the whole query each time: minutes on a small sample): each key's
    candidates in id order, folded in one aggregate. A candidate is on a chain when it starts
    an island or the last chosen candidate points at it; ids increase along a chain and no
    pointer crosses an island start, so one pointer per key is enough. -#}
{% macro spark__uba_funnel_attempt_chain(next_candidates, keys) -%}
    select explode(walks.candidate_ids) as candidate_id
    from (
        select aggregate(
            array_sort(collect_list(struct(candidate_id, next_candidate_id, is_island_start))),
            named_struct('next_id', cast(null as bigint), 'ids', cast(array() as array<bigint>)),
            (walk, candidate) -> case
                when candidate.is_island_start or candidate.candidate_id = walk.next_id
                    then named_struct(
                        'next_id', cast(candidate.next_candidate_id as bigint),
                        'ids', concat(walk.ids, array(cast(candidate.candidate_id as bigint))))
                else walk
            end,
            walk -> walk.ids
        ) as candidate_ids
        from {{ next_candidates }}
        group by {{ keys | join(', ') }}
    ) as walks
{%- endmacro %}

{#- No DELETE on Parquet tables: the rows kept are written aside and written back over the
    table (INSERT OVERWRITE cannot read the table it overwrites). Rendered while the hook runs,
    so it runs its statements itself and leaves the hook empty. -#}
{% macro spark__uba_drop_without_consent(purpose) -%}
    {%- set consent = ref('dim_user_consent') -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list
        if execute else [] -%}
    {%- if 'user_id' in columns -%}
        {%- set kept = this.incorporate(path={'identifier': this.identifier ~ '__consented'}) -%}
        {%- do run_query('drop table if exists ' ~ kept) -%}
        {%- do run_query('create table ' ~ kept ~ ' using parquet as select * from ' ~ this
            ~ ' where user_id not in (select user_id from ' ~ consent
            ~ ' where not has_' ~ purpose ~ '_consent)') -%}
        {%- do run_query('insert overwrite table ' ~ this ~ ' select * from ' ~ kept) -%}
        {%- do run_query('drop table ' ~ kept) -%}
    {%- endif -%}
{%- endmacro %}

{#- dbt-spark's dateadd goes through unix seconds, dropping the sub-second part (a funnel's
    window end then differs from DuckDB's by up to a second); timestampadd keeps microseconds
    and, like the other engines' interval arithmetic, returns a timestamp. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, cast({{ interval }} as bigint), {{ from_date_or_timestamp }})
{%- endmacro %}

{#- dbt-spark's seed loader (session method) binds an empty CSV cell as the text 'None': the
    rows are written as literals instead, an empty cell as null. -#}
{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
            ({%- for value in row -%}
                {%- set type = column_override.get(agate_table.column_names[loop.index0],
                    adapter.convert_type(agate_table, loop.index0)) -%}
                cast({{ 'null' if value is none else "'" ~ uba_string_body(value | string) ~ "'" }} as {{ type }})
                {{- ', ' if not loop.last }}
            {%- endfor -%}){{ ',' if not loop.last }}
            {% endfor %}
        {%- endset -%}
        {%- do run_query(sql) -%}
        {%- do statements.append(sql) -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{%- endmacro %}

{#- Snowflake ------------------------------------------------------------------------------ -#}

{% macro snowflake__uba_json_text(column, key) -%}
    json_extract_path_text({{ column }}, '{{ key }}')
{%- endmacro %}

{% macro snowflake__uba_epoch_seconds(ts) -%}
    (cast(date_part(epoch_microsecond, {{ ts }}) as double) / 1000000.0)
{%- endmacro %}

{% macro snowflake__uba_epoch_microseconds(ts) -%}
    cast(date_part(epoch_microsecond, {{ ts }}) as bigint)
{%- endmacro %}

{% macro snowflake__uba_timestamp_text(ts) -%}
    to_char({{ ts }}, 'YYYY-MM-DD HH24:MI:SS.FF6')
{%- endmacro %}

{% macro snowflake__uba_local_date(ts, time_zone) -%}
    cast(convert_timezone('UTC', '{{ time_zone }}', {{ ts }}) as date)
{%- endmacro %}

{% macro snowflake__uba_pseudonymize(column, namespace) -%}
    case when {{ column }} is null then null else
        left(sha2('{{ uba_salt() }}' || '|{{ namespace }}|' || {{ column }}, 256), 32)
    end
{%- endmacro %}

{#- array_agg leaves NULLs out on Snowflake. -#}
{% macro snowflake__uba_first_by(value, order_by, last) -%}
    get(array_agg({{ value }}) within group (order by
        {%- for column in order_by %} {{ column }}{{ ' desc' if last }}{{ ',' if not loop.last }}
        {%- endfor %}), 0)
{%- endmacro %}

{% macro snowflake__uba_iso_weekday(ts) -%}
    dayofweekiso({{ ts }})
{%- endmacro %}

{% macro snowflake__uba_cte_not_materialized() -%}{%- endmacro %}

{% macro snowflake__uba_holdout_bucket(raw_id, namespace) -%}
    (to_number(left(sha2(
        '{{ uba_holdout_key() }}' || '|holdout|' || {{ namespace }} || '|' || {{ raw_id }}, 256
    ), 8), 'XXXXXXXX') % 10000)
{%- endmacro %}

{#- BigQuery (GoogleSQL) ----------------------------------------------------------------------- -#}

{% macro bigquery__uba_json_text(column, key) -%}
    json_value({{ column }}, '$.{{ key }}')
{%- endmacro %}

{% macro bigquery__uba_type_double() -%}float64{%- endmacro %}

{% macro bigquery__uba_epoch_seconds(ts) -%}
    (unix_micros(timestamp({{ ts }})) / 1000000.0)
{%- endmacro %}

{% macro bigquery__uba_epoch_microseconds(ts) -%}
    unix_micros(timestamp({{ ts }}))
{%- endmacro %}

{% macro bigquery__uba_timestamp_text(ts) -%}
    format_timestamp('%Y-%m-%d %H:%M:%E6S', timestamp({{ ts }}))
{%- endmacro %}

{% macro bigquery__uba_local_date(ts, time_zone) -%}
    date(timestamp({{ ts }}), '{{ time_zone }}')
{%- endmacro %}

{% macro bigquery__uba_pseudonymize(column, namespace) -%}
    case when {{ column }} is null then null else
        left(to_hex(sha256(concat('{{ uba_salt() }}', '|{{ namespace }}|', {{ column }}))), 32)
    end
{%- endmacro %}

{% macro bigquery__uba_first_by(value, order_by, last) -%}
    array_agg({{ value }} ignore nulls order by
        {%- for column in order_by %} {{ column }}{{ ' desc' if last }}{{ ',' if not loop.last }}
        {%- endfor %} limit 1)[safe_offset(0)]
{%- endmacro %}

{#- No aggregate percentile_cont on BigQuery (only the analytic one): the percentile of 1000
    approximate quantiles, within 0.1% of the rank (docs/scale.md). -#}
{% macro bigquery__uba_percentile_cont(fraction, column) -%}
    approx_quantiles({{ column }}, 1000)[offset(cast(round({{ fraction }} * 1000) as int64))]
{%- endmacro %}

{#- BigQuery's DAYOFWEEK is 1 = Sunday ... 7 = Saturday. -#}
{% macro bigquery__uba_iso_weekday(ts) -%}
    (mod(extract(dayofweek from {{ ts }}) + 5, 7) + 1)
{%- endmacro %}

{% macro bigquery__uba_cte_not_materialized() -%}{%- endmacro %}

{% macro bigquery__uba_holdout_bucket(raw_id, namespace) -%}
    mod(cast(concat('0x', left(to_hex(sha256(concat(
        '{{ uba_holdout_key() }}', '|holdout|', {{ namespace }}, '|', {{ raw_id }}
    ))), 8)) as int64), 10000)
{%- endmacro %}

{#- Contracts on Spark: the models declare the types DuckDB and PostgreSQL share (text,
    float8); Spark spells them string and double. dbt checks a contract by casting null to each
    declared type, so the names are translated there, once, instead of per model. -#}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set spark_types = {
        'text': 'string', 'varchar': 'string', 'float8': 'double',
        'double precision': 'double', 'int8': 'bigint', 'int4': 'int'
    } -%}
    {%- set translated = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set declared = (column.data_type or '') | lower -%}
        {%- do translated.update({name: dict(column, data_type=spark_types.get(declared, column.data_type))}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(translated)) }}
{%- endmacro %}

{#- uba_device_neighbour_users (uba_stitching.sql) with IGNORE NULLS after the call, the only
    place Spark and Snowflake take it (DuckDB and BigQuery take it inside the parentheses). -#}
{% macro spark__uba_device_neighbour_users(relation, columns) -%}
    {{ uba_device_neighbour_users_nulls_after(relation, columns) }}
{%- endmacro %}

{% macro snowflake__uba_device_neighbour_users(relation, columns) -%}
    {{ uba_device_neighbour_users_nulls_after(relation, columns) }}
{%- endmacro %}

{% macro uba_device_neighbour_users_nulls_after(relation, columns) -%}
    select
        {{ columns | join(', ') }},
        user_hash,
        anonymous_hash,
        last_value(user_hash) ignore nulls over (
            partition by anonymous_hash
            order by event_ts, event_id
            rows between unbounded preceding and current row
        ) as previous_user_hash,
        first_value(user_hash) ignore nulls over (
            partition by anonymous_hash
            order by event_ts, event_id
            rows between current row and unbounded following
        ) as next_user_hash
    from {{ relation }}
    where anonymous_hash is not null
{%- endmacro %}

{#- dbt-spark adds NOT NULL / CHECK constraints unless told the table is not Delta; ours are
    Parquet (session method, no Delta jars), which cannot hold them: the contract's columns
    and types are still checked, the constraints are the dbt tests' job there. -#}
{% macro spark__persist_constraints(relation, model) -%}
    {%- if config.get('file_format') == 'delta' -%}
        {% do alter_table_add_constraints(relation, model.constraints) %}
        {% do alter_column_set_constraints(relation, model.columns) %}
    {%- endif -%}
{%- endmacro %}

{#- A pre-hook for a model whose PostgreSQL plan goes wrong without it: the planner estimates one
    row for chains of CTEs and picks nested loops that re-run whole subplans for every row
    (fct_funnel_attempts on the PostgreSQL tests' 60k events: over 12 minutes, 1.9 s without
    nested loops). `set local` lasts for the model's transaction only; other engines need
    nothing (an empty hook is skipped). -#}
{% macro uba_no_nested_loops() -%}
    {{ return(adapter.dispatch('uba_no_nested_loops', 'uba')()) }}
{%- endmacro %}

{% macro default__uba_no_nested_loops() -%}{%- endmacro %}

{% macro postgres__uba_no_nested_loops() -%}
    set local enable_nestloop = off
{%- endmacro %}
