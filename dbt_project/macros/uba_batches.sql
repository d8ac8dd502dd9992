{#- Incremental batches: how the models downstream of int_events_sessionized find what changed.

    int_events_sessionized stamps every row it writes with batch_id (1 = a full build, then
    one more per incremental run that changed something) and, for an event that moved to
    another person in that run, previous_user_id. Each downstream incremental model (a
    "consumer") records the producer batch it has consumed in a small bookkeeping table,
    uba_consumed_batches (in the target schema, created by on-run-start), in a post-hook of
    the same transaction as its own write: a consumer that failed or was skipped has not
    recorded anything, so its next run still sees those rows (Snowplow's incremental manifest
    works the same way).

    Spark rebuilds these models in full (macro uba_incremental_unless_spark): no bookkeeping
    there (the spark__ versions in uba_cross_db_engines.sql render nothing).

    A consumer re-reads everything when it has never consumed this producer, when the
    producer was rebuilt (a full refresh forgets its consumers) or when it is more than one
    batch behind (previous_user_id only describes the latest batch). -#}

{% macro uba_batch_manifest() -%}
    {{ target.schema }}.uba_consumed_batches
{%- endmacro %}

{#- on-run-start (dbt_project.yml). -#}
{% macro uba_create_batch_manifest() -%}
    {{ return(adapter.dispatch('uba_create_batch_manifest', 'uba')()) }}
{%- endmacro %}

{% macro default__uba_create_batch_manifest() -%}
    create table if not exists {{ uba_batch_manifest() }} (
        consumer {{ dbt.type_string() }} not null,
        producer {{ dbt.type_string() }} not null,
        batch_id bigint not null
    )
{%- endmacro %}

{#- The cache of one model's run: its SQL is compiled in one context and its hooks and
    materialization are rendered in another, each with its own copy of `model`, so a value
    read by a query in both (a batch figure, a literal bound) was read twice, and every hook's
    figures again: about three queries of dbt's per-statement cost per incremental model a day.
    The model's entry in dbt's `graph` (built once per parse) is shared by both; keyed by
    dbt's invocation id, so a process running several commands on one parse
    (python_models/dbt_warm.py) starts each afresh. Anything else (a unit test renders the
    model's SQL as its own node) keeps the context's `model`. Every value cached is read before
    the model writes anything (the compile runs first), as the pre-hooks always read them. -#}
{% macro uba_run_cache() -%}
    {%- set node = graph.nodes.get(model.unique_id) if execute
        and model.resource_type == 'model' else none -%}
    {%- if node is none -%}
        {{ return(model) }}
    {%- endif -%}
    {%- set key = 'uba_run_cache:' ~ invocation_id -%}
    {%- if key not in node -%}
        {%- do node.update({key: {}}) -%}
    {%- endif -%}
    {{ return(node[key]) }}
{%- endmacro %}

{#- The batch figures a consumer's SQL needs, read before the SQL runs and written into it
    as literals: a comparison with a literal lets DuckDB skip the row groups whose batch_id
    zone map is outside it (every row group of the history holds batch_id 1 alone), while a
    comparison with a scalar subquery reads the whole producer. Returns none while dbt only
    parses, or when the bookkeeping table is not there yet (then the SQL keeps the subqueries:
    same rows, whole scans). One query: DuckDB finds the producer's max(batch_id) in under a
    millisecond at 10M rows without the `batch_id > consumed` bound a second query used to
    give it (on PostgreSQL, with no index on batch_id, both are a scan); the latest is never
    below the consumed one (a rebuilt producer has forgotten its consumers: consumed = 0). -#}
{% macro uba_batch_figures(producer) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set manifest = adapter.get_relation(
        database=target.database, schema=target.schema, identifier='uba_consumed_batches') -%}
    {%- if manifest is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set cache = uba_run_cache() -%}
    {%- set cache_key = 'uba_batch_figures:' ~ this.identifier ~ ':' ~ producer.identifier -%}
    {%- if cache_key in cache -%}
        {{ return(cache[cache_key]) }}
    {%- endif -%}
    {%- set row = run_query(
        "select consumed, greatest(consumed, coalesce((select max(batch_id) from " ~ producer
        ~ "), 0)) from (select coalesce(max(batch_id), 0) as consumed from "
        ~ uba_batch_manifest() ~ " where consumer = '" ~ this.identifier
        ~ "' and producer = '" ~ producer.identifier ~ "') as manifest").rows[0] -%}
    {%- set figures = {'consumed': row[0] | int, 'latest': row[1] | int} -%}
    {%- do cache.update({cache_key: figures}) -%}
    {{ return(figures) }}
{%- endmacro %}

{#- The last producer batch this model consumed (0: none): a literal (uba_batch_figures), or a
    scalar subquery where the figures cannot be read. -#}
{% macro uba_consumed_batch(producer) -%}
    {%- set figures = uba_batch_figures(producer) -%}
    {%- if figures is not none -%}
    {{ figures.consumed }}
    {%- else -%}
    (
        select coalesce(max(batch_id), 0) from {{ uba_batch_manifest() }}
        where consumer = '{{ this.identifier }}' and producer = '{{ producer.identifier }}'
    )
    {%- endif -%}
{%- endmacro %}

{#- True when this model must re-read every producer row (see above). -#}
{% macro uba_reads_everything(producer) -%}
    {%- set figures = uba_batch_figures(producer) -%}
    {%- if figures is not none -%}
    {{ 'true' if figures.consumed == 0 or figures.consumed < figures.latest - 1 else 'false' }}
    {%- else -%}
    (
        {{ uba_consumed_batch(producer) }} = 0
        or {{ uba_consumed_batch(producer) }}
            < (select coalesce(max(batch_id), 0) from {{ producer }}) - 1
    )
    {%- endif -%}
{%- endmacro %}

{#- The producer rows written since this model last consumed it (all of them on a full
    build of this model). -#}
{% macro uba_changed_rows(producer, columns='*') -%}
    select {{ columns }} from {{ producer }}
    {%- if is_incremental() %}
    {%- set figures = uba_batch_figures(producer) %}
    {%- if figures is none %}
    where batch_id > {{ uba_consumed_batch(producer) }} or {{ uba_reads_everything(producer) }}
    {%- elif uba_reads_everything(producer) | trim == 'false' %}
    where batch_id > {{ figures.consumed }}
    {%- endif %}
    {%- endif %}
{%- endmacro %}

{#- People (person keys) whose events changed since this model last consumed the producer,
    each with the earliest changed event time: their events from then on were re-cut, and
    their sessions before it are untouched. Includes people who lost events. -#}
{% macro uba_changed_people(producer) -%}
    select user_id, min(event_ts) as changed_from_ts
    from (
        select user_id, event_ts from ({{ uba_changed_rows(producer) }}) as changed
        union all
        select previous_user_id as user_id, event_ts
        from ({{ uba_changed_rows(producer) }}) as moved
        where previous_user_id is not null
    ) as touched
    group by 1
{%- endmacro %}

{#- Post-hooks of a consumer: record the producer batch it has now consumed. -#}
{% macro uba_record_consumed_batch(producer) -%}
    {{ return(adapter.dispatch('uba_record_consumed_batch', 'uba')(producer)) }}
{%- endmacro %}

{% macro default__uba_record_consumed_batch(producer) -%}
    delete from {{ uba_batch_manifest() }}
    where consumer = '{{ this.identifier }}' and producer = '{{ producer.identifier }}';
    insert into {{ uba_batch_manifest() }} (consumer, producer, batch_id)
    {%- set figures = uba_batch_figures(producer) %}
    {%- if figures is not none %}
    values ('{{ this.identifier }}', '{{ producer.identifier }}', {{ figures.latest }})
    {%- else %}
    select '{{ this.identifier }}', '{{ producer.identifier }}', coalesce(max(batch_id), 0)
    from {{ producer }}
    {%- endif %}
{%- endmacro %}

{#- Post-hook of a producer: a full refresh renumbers its batches, so every consumer has to
    re-read it. -#}
{% macro uba_forget_consumers_on_full_refresh() -%}
    {{ return(adapter.dispatch('uba_forget_consumers_on_full_refresh', 'uba')()) }}
{%- endmacro %}

{% macro default__uba_forget_consumers_on_full_refresh() -%}
    {%- if not is_incremental() -%}
    delete from {{ uba_batch_manifest() }} where producer = '{{ this.identifier }}'
    {%- endif -%}
{%- endmacro %}

{#- (user, event day) pairs with events written since this model last consumed the producer,
    for the person who holds them now and the one who lost them (re-stitching). -#}
{% macro uba_changed_user_days(producer) -%}
    select distinct user_id, cast(event_ts as date) as event_date
    from ({{ uba_changed_rows(producer) }}) as changed
    union
    select distinct previous_user_id as user_id, cast(event_ts as date) as event_date
    from ({{ uba_changed_rows(producer) }}) as moved
    where previous_user_id is not null
{%- endmacro %}

{#- The config of a consumer of int_events_sessionized, written once: incremental, its stale
    rows deleted by a pre-hook before the new ones are appended (or, with unique_key, replaced
    by delete+insert), and the consumed batch recorded by a post-hook. `replaces` says which
    stored rows a run deletes (besides every row when the model re-reads everything):
    - 'user_days': rows whose (user_id, `day_column`) had events written (re-counted per day);
    - 'people': every row of a person whose events changed (recomputed from all their events);
    - 'people_since': a changed person's rows where `since` holds, a condition on the stored
      row ({{ this }}) and changed.changed_from_ts (the person's earliest changed event);
    - 'rows': rows where `where` holds (a condition on the stored rows, e.g. a period bound);
    - 'keys': none (the model writes with delete+insert on unique_key).
    `stale_from` (optional): Jinja rendering `and <a condition on the stored row>` that every
    stale row meets, or nothing: a redundant bound with a literal, so the delete skips the row
    groups before it instead of testing every stored row. 'user_days' has one by default: its
    stale rows are on or after the earliest changed day (feature_and_changed_days_from).
    Use: {{ config(**uba_events_consumer_config('people')) }}. -#}
{% macro uba_events_consumer_config(replaces, since=none, unique_key=none, where=none, day_column='event_date', stale_from='') -%}
    {%- set producer = "ref('int_events_sessionized')" -%}
    {%- if replaces == 'user_days' -%}
        {%- set stale = "exists (select 1 from ({{ uba_changed_user_days(" ~ producer ~ ") }})"
            ~ " as changed where changed.user_id = {{ this }}.user_id"
            ~ " and changed.event_date = {{ this }}." ~ day_column ~ ")" -%}
        {%- set stale_from = stale_from or
            "{{ feature_and_changed_days_from('" ~ day_column ~ "') }}" -%}
    {%- elif replaces == 'people' -%}
        {%- set stale = "user_id in (select user_id from ({{ uba_changed_people(" ~ producer
            ~ ") }}) as changed)" -%}
    {%- elif replaces == 'people_since' and since -%}
        {%- set stale = "exists (select 1 from ({{ uba_changed_people(" ~ producer ~ ") }})"
            ~ " as changed where changed.user_id = {{ this }}.user_id and " ~ since ~ ")" -%}
    {%- elif replaces == 'rows' and where -%}
        {%- set stale = where -%}
    {%- elif replaces == 'keys' and unique_key -%}
        {%- set stale = "false" -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("uba_events_consumer_config: replaces must be "
            ~ "user_days, people, people_since (with since), rows (with where) or keys (with "
            ~ "unique_key); got "
            ~ replaces) }}
    {%- endif -%}
    {%- set config = {
        'materialized': uba_incremental_unless_spark(),
        'incremental_strategy': 'delete+insert' if unique_key else 'append',
        'on_schema_change': 'fail',
        'pre_hook': ["{% if is_incremental() %}delete from {{ this }} where {{ uba_reads_everything("
            ~ producer ~ ") }} or (" ~ stale ~ stale_from ~ "){% endif %}"],
        'post_hook': ["{{ uba_record_consumed_batch(" ~ producer ~ ") }}"],
    } -%}
    {%- if unique_key -%}
        {%- do config.update({'unique_key': unique_key}) -%}
    {%- endif -%}
    {{ return(config) }}
{%- endmacro %}

{#- The one value a query returns, read before the model's SQL runs, for a redundant bound
    written into that SQL as a literal (a person-by-person bound such as "from this person's
    earliest change" is a join condition, which cannot skip row groups; the smallest of them
    as a literal can, where the table is stored in time order). Returns none while dbt only
    parses or when the query returns null: the caller then leaves the bound out (same rows,
    whole scan). -#}
{% macro uba_query_value(sql) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set value = run_query(sql).rows[0][0] -%}
    {{ return(value) }}
{%- endmacro %}

{#- uba_query_value(sql), read once per model run under `key` (uba_run_cache): a bound written
    both into the model's SQL and into its pre-hook reads the same value (and runs its query
    once). -#}
{% macro uba_cached_query_value(key, sql) -%}
    {%- set cache = uba_run_cache() -%}
    {%- if key not in cache -%}
        {%- do cache.update({key: uba_query_value(sql)}) -%}
    {%- endif -%}
    {{ return(cache[key]) }}
{%- endmacro %}

{#- `and <column> >= <value, less days_before days>`, value written in as a literal of `type`
    (a timestamp unless given); nothing when value is none (dbt only parsing, nothing
    changed): every caller's bound is redundant, so leaving it out keeps the same rows. The
    one emitter of the literal bounds (uba_and_at_or_after, funnel_and_replayed_from,
    feature_and_rebuilt_from, feature_and_changed_days_from). -#}
{% macro uba_and_literal_from(column, value, type=none, days_before=0) -%}
{%- if value is not none %}
        and {{ column }} >= cast('{{ value - modules.datetime.timedelta(days=days_before) if days_before else value }}' as {{ type or dbt.type_timestamp() }})
{%- endif -%}
{%- endmacro %}

{#- `and <column> >= <the smallest value of bound_sql>` where it can be read (see above),
    nothing otherwise. bound_sql selects one timestamp or date column. -#}
{% macro uba_and_at_or_after(column, bound_sql) -%}
    {%- set bound = uba_query_value('select min(bound) from (' ~ bound_sql ~ ') as bounds(bound)') -%}
    {{- uba_and_literal_from(column, bound) -}}
{%- endmacro %}

{#- `load_id in (...)`: the load batches `source` holds that `consumed` (a query of load ids)
    does not list, read before the model's SQL runs and written in as literals, so DuckDB skips
    the row groups of the batches already consumed (`load_id not in (subquery)` reads every row
    of `source`, all its columns, every day). While dbt only parses: the subquery itself (same
    rows). Load ids are not a watermark: a batch the gate blocked and later released lands
    after newer ones. -#}
{% macro uba_new_loads(source, consumed) -%}
    {%- set new_loads = 'load_id not in (' ~ consumed ~ ')' -%}
    {%- if not execute -%}
        {{ return(new_loads) }}
    {%- endif -%}
    {%- set cache = uba_run_cache() -%}
    {%- set cache_key = 'uba_new_loads:' ~ source ~ ':' ~ consumed -%}
    {%- if cache_key not in cache -%}
        {%- set load_ids = run_query(
            'select distinct load_id from ' ~ source ~ ' where ' ~ new_loads ~ ' order by 1'
        ).columns[0].values() -%}
        {%- do cache.update({cache_key: 'load_id in (' ~ (load_ids | join(', ')) ~ ')'
            if load_ids else 'false'}) -%}
    {%- endif -%}
    {{ return(cache[cache_key]) }}
{%- endmacro %}

{#- The load batches of `source` a model without a load_id column has consumed: one row per
    load in uba_consumed_batches (batch_id = load_id), written by its post-hook
    uba_record_consumed_loads in the same transaction as its rows. `version` (e.g. a hash of
    a setting the rows depend on) is part of the producer's name there: under a new version
    nothing has been consumed, so the model re-reads every load (its pre-hook
    uba_forget_rows_of_other_versions deletes the rows of the old one). -#}
{% macro uba_loads_producer(source, version='') -%}
    {{ source.identifier }}{{ ('@' ~ version) if version else '' }}
{%- endmacro %}

{#- Config of a model that appends what it reads from the load batches of app.events_validated
    it has not consumed (uba_new_loads of uba_consumed_loads), each run's loads recorded by its
    post-hook under `version`: the hash of the setting its rows depend on, the same value the
    model's SQL passes to uba_consumed_loads, written into the hooks as a literal (a new value
    means a new parse, so the hooks always carry the run's); under a new version its pre-hook
    drops the stored rows and it reads every load again. -#}
{% macro uba_loads_consumer_config(version) -%}
    {%- set source = "source('app', 'events_validated')" -%}
    {%- set literal = "'" ~ version ~ "'" -%}
    {{ return({
        'materialized': uba_incremental_unless_spark(),
        'incremental_strategy': 'append',
        'on_schema_change': 'fail',
        'pre_hook': ["{{ uba_forget_rows_of_other_versions(" ~ source ~ ", " ~ literal ~ ") }}"],
        'post_hook': ["{{ uba_record_consumed_loads(" ~ source ~ ", " ~ literal ~ ") }}"],
    }) }}
{%- endmacro %}

{% macro uba_consumed_loads(source, version='') -%}
    select batch_id from {{ uba_batch_manifest() }}
    where consumer = '{{ this.identifier }}'
        and producer = '{{ uba_loads_producer(source, version) }}'
{%- endmacro %}

{% macro uba_record_consumed_loads(source, version='') -%}
    {{ return(adapter.dispatch('uba_record_consumed_loads', 'uba')(source, version)) }}
{%- endmacro %}

{% macro default__uba_record_consumed_loads(source, version='') -%}
    {#- the loads of `source` under every version, not the batches the model records of a
        producer of that name (uba_record_consumed_batch: no version) -#}
    delete from {{ uba_batch_manifest() }}
    where consumer = '{{ this.identifier }}'
        and (producer like '{{ source.identifier }}@%'
            {%- if not version %} or producer = '{{ source.identifier }}'{% endif %})
    {%- if is_incremental() %}
        and producer <> '{{ uba_loads_producer(source, version) }}'
    {%- endif %};
    insert into {{ uba_batch_manifest() }} (consumer, producer, batch_id)
    select distinct '{{ this.identifier }}', '{{ uba_loads_producer(source, version) }}', load_id
    from {{ source }}
    {%- if is_incremental() %}
    where {{ uba_new_loads(source, uba_consumed_loads(source, version)) }}
    {%- endif %}
{%- endmacro %}

{#- Post-hook of a model that counts rows once (int_user_value_counts): the loads of the rows
    it read this run (`source`'s rows written since its last run) not recorded yet, under
    `version`. Unlike uba_record_consumed_loads it records only loads it has read rows of. -#}
{% macro uba_record_loads_read(source, version='') -%}
    {{ return(adapter.dispatch('uba_record_loads_read', 'uba')(source, version)) }}
{%- endmacro %}

{% macro default__uba_record_loads_read(source, version='') -%}
    insert into {{ uba_batch_manifest() }} (consumer, producer, batch_id)
    select distinct '{{ this.identifier }}', '{{ uba_loads_producer(source, version) }}', load_id
    from ({{ uba_changed_rows(source, 'load_id') }}) as written
    where load_id not in ({{ uba_consumed_loads(source, version) }})
{%- endmacro %}

{#- Pre-hook of such a model: every stored row goes when no load is recorded under `version`
    (a first run under a new version, or a model never recorded). -#}
{% macro uba_forget_rows_of_other_versions(source, version='') -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where not exists ({{ uba_consumed_loads(source, version) }})
    {%- endif -%}
{%- endmacro %}

{#- The stored table of `consumer` (a model name) when it has consumed every batch `producer`
    holds, so its rows describe the producer's rows as they are now (a producer reading a
    consumer's rows as state before it runs: the consumer is not a ref, which would be a cycle).
    None while dbt only parses, when the table or the bookkeeping is missing, or when the
    consumer lags (it failed, was not selected, or the producer was rebuilt): the caller then
    computes the same state from the producer. -#}
{% macro uba_current_consumer(consumer, producer) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.' ~ consumer) -%}
    {%- set manifest = adapter.get_relation(
        database=target.database, schema=target.schema, identifier='uba_consumed_batches') -%}
    {%- if node is none or manifest is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set relation = adapter.get_relation(
        database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- if relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set row = run_query(
        "select (select coalesce(max(batch_id), 0) from " ~ uba_batch_manifest()
        ~ " where consumer = '" ~ relation.identifier ~ "' and producer = '"
        ~ producer.identifier ~ "'), (select coalesce(max(batch_id), 0) from " ~ producer
        ~ ")").rows[0] -%}
    {{ return(relation if row[0] | int > 0 and row[0] | int == row[1] | int else none) }}
{%- endmacro %}
