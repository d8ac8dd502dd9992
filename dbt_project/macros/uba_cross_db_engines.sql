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
